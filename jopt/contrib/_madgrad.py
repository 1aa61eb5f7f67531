"""MADGRAD: momentumised, dual-averaged adaptive gradient steps (cube-root denominator)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree as jtree
from jopt.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    Params,
    ScalarOrSchedule,
    Updates,
)
from jopt.schedules._hyper import value_at, zero_count
from jopt.transforms import add_decayed_weights, chain


class MadgradState(NamedTuple):
    """State of :func:`scale_by_madgrad`."""

    count: jax.Array  # int32 scalar, steps seen (saturates)
    grad_sum_sq: Updates  # G_k: weighted sum of squared gradients, like params
    s: Updates  # s_k: weighted sum of gradients, like params
    x0: Params  # the initial parameters


def scale_by_madgrad(
    learning_rate: ScalarOrSchedule,
    momentum: float = 0.9,
    eps: float = 1e-6,
) -> GradientTransformation:
    r"""MADGRAD's step: dual averaging with a cube-root AdaGrad denominator and momentum.

    With :math:`\lambda_k = (\eta_k + \epsilon)\sqrt{k+1}`:

    .. math::

        G_{k+1} = G_k + \lambda_k g_k^2, \quad s_{k+1} = s_k + \lambda_k g_k, \quad
        z_{k+1} = x_0 - s_{k+1} / (G_{k+1}^{1/3} + \epsilon), \\
        x_{k+1} = (1-c)\, z_{k+1} + c\, x_k, \quad u_k = x_{k+1} - x_k

    The learning rate is part of the rule, so the update is already a step; needs ``params``.

    Args:
      learning_rate: :math:`\eta_k`, >= 0 or a schedule.
      momentum: :math:`c`, in [0, 1). Default 0.9.
      eps: :math:`\epsilon`, added to the learning rate and the denominator, >= 0. Default 1e-6.

    References:
      Defazio & Jelassi, `Adaptivity without Compromise: A Momentumized, Adaptive, Dual
      Averaged Gradient Method for Stochastic Optimization
      <https://arxiv.org/abs/2101.11075>`_, JMLR 2022.
    """
    check.learning_rate("learning_rate", learning_rate)
    check.unit_interval("momentum", momentum)
    check.non_negative("eps", eps)

    def init(params):
        return MadgradState(
            count=zero_count(),
            grad_sum_sq=jtree.zeros_like(params),
            s=jtree.zeros_like(params),
            x0=jax.tree.map(lambda x: x, params),
        )

    def update(updates, state, params=None):
        check.params_given("scale_by_madgrad", params)
        lamb = (value_at(learning_rate, state.count) + eps) * jnp.sqrt(state.count + 1)
        # The increments are cast to the gradient's dtype so fp16/bf16 sums stay low precision.
        grad_sum_sq = jax.tree.map(
            lambda big_g, g: big_g + (lamb * g**2).astype(g.dtype), state.grad_sum_sq, updates
        )
        s = jax.tree.map(lambda acc, g: acc + (lamb * g).astype(g.dtype), state.s, updates)

        def step(x0, acc, big_g, x):
            z = x0 - acc / (jnp.cbrt(big_g) + eps)
            return ((1 - momentum) * z + momentum * x) - x

        out = jax.tree.map(step, state.x0, s, grad_sum_sq, params)
        return out, MadgradState(jtree.safe_increment(state.count), grad_sum_sq, s, state.x0)

    return GradientTransformation(init, update)


def madgrad(
    learning_rate: ScalarOrSchedule,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    eps: float = 1e-6,
) -> GradientTransformationExtraArgs:
    r"""MADGRAD (see :func:`scale_by_madgrad`), with weight decay added to the gradient.

    .. math::  g_k \leftarrow g_k + w\, x_k, \qquad x_{k+1} = x_k + u_k^{\text{MADGRAD}}

    Args:
      learning_rate: :math:`\eta_k`, >= 0 or a schedule.
      momentum: in [0, 1). Default 0.9.
      weight_decay: :math:`w`, coupled (L2) weight decay, >= 0. Default 0.
      eps: added to the learning rate and the denominator, >= 0. Default 1e-6.

    References:
      Defazio & Jelassi, `Adaptivity without Compromise: A Momentumized, Adaptive, Dual
      Averaged Gradient Method for Stochastic Optimization
      <https://arxiv.org/abs/2101.11075>`_, JMLR 2022.
    """
    check.non_negative("weight_decay", weight_decay)
    return chain(
        add_decayed_weights(weight_decay),
        scale_by_madgrad(learning_rate=learning_rate, momentum=momentum, eps=eps),
    )
