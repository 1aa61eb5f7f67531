"""ACProp: AdaBelief's centred second moment, used one step late (asynchronous update)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree as jtree
from jopt.base import GradientTransformation, GradientTransformationExtraArgs, ScalarOrSchedule
from jopt.schedules._hyper import zero_count
from jopt.transforms import ScaleByBeliefState, add_decayed_weights, chain, scale_by_learning_rate


def scale_by_acprop(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-16,
    eps_root: float = 1e-16,
) -> GradientTransformation:
    r"""Rescale updates by ACProp: the gradient over the *previous* centred second moment.

    .. math::

        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        s_t = \beta_2 s_{t-1} + (1-\beta_2)(g_t - m_{t-1})^2 + \bar\epsilon, \quad
        u_t = g_t \,/\, \big(\sqrt{s_{t-1} / (1-\beta_2^{t-1})} + \epsilon\big)

    On the first step the denominator is :math:`1 + \epsilon`. The state is
    :class:`jopt.ScaleByBeliefState` (``mu`` = :math:`m`, ``nu`` = :math:`s`).

    Args:
      b1: :math:`\beta_1`, decay of the first moment, in [0, 1). Default 0.9.
      b2: :math:`\beta_2`, decay of the centred second moment, in [0, 1). Default 0.999.
      eps: :math:`\epsilon`, added to the denominator, >= 0. Default 1e-16.
      eps_root: :math:`\bar\epsilon`, added to the second moment, >= 0. Default 1e-16.

    References:
      Zhuang et al., `Momentum Centering and Asynchronous Update for Adaptive Gradient
      Methods <https://arxiv.org/abs/2110.05454>`_, NeurIPS 2021.
    """
    check.unit_interval("b1", b1)
    check.unit_interval("b2", b2)
    check.non_negative("eps", eps)
    check.non_negative("eps_root", eps_root)

    def init(params):
        return ScaleByBeliefState(
            count=zero_count(), mu=jtree.zeros_like(params), nu=jtree.zeros_like(params)
        )

    def update(updates, state, params=None):
        del params
        mu = jtree.update_moment(updates, state.mu, b1, 1)
        # The prediction error is measured against the moment *before* this step.
        error = jtree.sub(updates, state.mu)
        nu = jtree.update_moment_per_elem_norm(error, state.nu, b2, 2)
        nu = jax.tree.map(lambda v: v + eps_root, nu)
        count = jtree.safe_increment(state.count)
        first = state.count == 0
        # t - 1 would be 0 on the first step (0/0); that step's denominator is forced to 1.
        previous = jtree.bias_correction(state.nu, b2, jnp.where(first, count, state.count))
        previous = jax.tree.map(lambda v: jnp.where(first, 1, v), previous)
        out = jax.tree.map(lambda g, v: g / (jnp.sqrt(v) + eps), updates, previous)
        return out, ScaleByBeliefState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init, update)


def acprop(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-16,
    eps_root: float = 1e-16,
    weight_decay: float = 0.0,
    mask: Any | Callable[[Any], Any] | None = None,
) -> GradientTransformationExtraArgs:
    r"""ACProp: centred, asynchronous adaptive steps (see :func:`scale_by_acprop`).

    .. math::  x_{t+1} = x_t - \alpha_t\,\big(u_t^{\text{ACProp}} + \lambda x_t\big)

    Args:
      learning_rate: :math:`\alpha_t`, a number >= 0 or a schedule.
      b1: decay of the first moment, in [0, 1). Default 0.9.
      b2: decay of the centred second moment, in [0, 1). Default 0.999.
      eps: added to the denominator, >= 0. Default 1e-16.
      eps_root: added to the second moment, >= 0. Default 1e-16.
      weight_decay: :math:`\lambda`, decoupled weight decay (times the learning rate), >= 0.
      mask: a tree of booleans (or a function of the params returning one) selecting the
        leaves to decay; None decays all.

    References:
      Zhuang et al., `Momentum Centering and Asynchronous Update for Adaptive Gradient
      Methods <https://arxiv.org/abs/2110.05454>`_, NeurIPS 2021.
    """
    check.learning_rate("learning_rate", learning_rate)
    return chain(
        scale_by_acprop(b1=b1, b2=b2, eps=eps, eps_root=eps_root),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
