"""D-Adaptation AdamW: Adam whose step size is an estimate of the distance to the solution."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree as jtree
from jopt.base import GradientTransformationExtraArgs, ScalarOrSchedule, Updates
from jopt.schedules._hyper import value_at, zero_count


class DAdaptAdamWState(NamedTuple):
    """State of :func:`dadapt_adamw`."""

    exp_avg: Updates  # EMA of d-scaled gradients, like params
    exp_avg_sq: Updates  # EMA of squared gradients, like params
    grad_sum: Updates  # EMA of d-scaled gradients with decay sqrt(beta2), like params
    estim_lr: jax.Array  # scalar, lowest params dtype: d, the distance estimate
    numerator_weighted: jax.Array  # scalar, lowest params dtype: numerator of d's estimate
    count: jax.Array  # int32 scalar, steps seen (saturates)


def check_betas(betas: tuple[float, float]) -> tuple[float, float]:
    """Validate an Adam ``betas`` pair; return it unpacked."""
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}; e.g. (0.9, 0.999)")
    check.unit_interval("betas[0]", betas[0])
    check.unit_interval("betas[1]", betas[1], "pass a value in [0, 1) such as 0.999")
    return betas[0], betas[1]


def dadapt_adamw(
    learning_rate: ScalarOrSchedule = 1.0,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    estim_lr0: float = 1e-6,
    weight_decay: float = 0.0,
) -> GradientTransformationExtraArgs:
    r"""D-Adaptation AdamW: learning-rate-free Adam (the learning rate is a multiplier of d).

    With :math:`\lambda_t = d_t\,\eta_t \sqrt{1-\beta_2^{t}} / (1-\beta_1^{t})`,
    :math:`\sqrt{\beta_2}` written :math:`\beta`:

    .. math::

        r_t = \beta r_{t-1}
            + (1-\beta)\,\lambda_t \langle g_t, s_{t-1} / (\sqrt{v_{t-1}}+\epsilon)\rangle,
        \quad s_t = \beta s_{t-1} + (1-\beta)\lambda_t g_t, \\
        m_t = \beta_1 m_{t-1} + (1-\beta_1)\lambda_t g_t, \quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \quad
        d_{t+1} = \max\!\big(d_t, r_t / ((1-\beta)\|s_t\|_1)\big), \\
        u_t = -m_t / (\sqrt{v_t} + \epsilon) - w\,\lambda_t x_t

    The update is already a step; needs ``params``.

    Args:
      learning_rate: :math:`\eta_t`, multiplies the estimated step, >= 0 or a schedule. Default 1.
      betas: :math:`(\beta_1, \beta_2)`, each in [0, 1). Default (0.9, 0.999).
      eps: added to the denominator, >= 0. Default 1e-8.
      estim_lr0: :math:`d_0`, the initial distance estimate, > 0. Default 1e-6.
      weight_decay: :math:`w`, decoupled weight decay, >= 0. Default 0.

    References:
      Defazio & Mishchenko, `Learning-Rate-Free Learning by D-Adaptation
      <https://arxiv.org/abs/2301.07733>`_, ICML 2023.
    """
    check.learning_rate("learning_rate", learning_rate)
    beta1, beta2 = check_betas(betas)
    check.non_negative("eps", eps)
    check.positive("estim_lr0", estim_lr0, "pass a small positive value such as 1e-6")
    check.non_negative("weight_decay", weight_decay)

    def init(params):
        # Scalars in the lowest params dtype, so bf16 params are not promoted by the step.
        low = jtree.dtype(params, "lowest")
        return DAdaptAdamWState(
            exp_avg=jtree.zeros_like(params),
            exp_avg_sq=jtree.zeros_like(params),
            grad_sum=jtree.zeros_like(params),
            estim_lr=jnp.asarray(estim_lr0, low),
            numerator_weighted=jnp.zeros([], low),
            count=zero_count(),
        )

    def update(updates, state, params=None, **extra_args):
        del extra_args
        check.params_given("dadapt_adamw", params)
        root_b2 = beta2**0.5
        count = jtree.safe_increment(state.count)
        correction = ((1 - beta2**count) ** 0.5) / (1 - beta1**count)
        dlr = state.estim_lr * value_at(learning_rate, state.count) * correction
        dlr = dlr.astype(state.numerator_weighted.dtype)
        weighted = jax.tree.map(
            lambda s, v: s / (jnp.sqrt(v) + eps), state.grad_sum, state.exp_avg_sq
        )
        numerator_step = jtree.vdot(updates, weighted)
        exp_avg = jax.tree.map(
            lambda m, g: beta1 * m + (1 - beta1) * dlr * g, state.exp_avg, updates
        )
        exp_avg_sq = jax.tree.map(
            lambda v, g: beta2 * v + (1 - beta2) * g * g, state.exp_avg_sq, updates
        )
        grad_sum = jax.tree.map(
            lambda s, g: root_b2 * s + (1 - root_b2) * dlr * g, state.grad_sum, updates
        )
        numerator = root_b2 * state.numerator_weighted + (1 - root_b2) * dlr * numerator_step
        estimate = numerator / ((1 - root_b2) * jtree.l1_norm(grad_sum))
        estim_lr = jnp.maximum(state.estim_lr, estimate)
        out = jax.tree.map(
            lambda m, v, x: -weight_decay * dlr * x - m / (jnp.sqrt(v) + eps),
            exp_avg, exp_avg_sq, params,
        )  # fmt: skip
        new_state = DAdaptAdamWState(exp_avg, exp_avg_sq, grad_sum, estim_lr, numerator, count)
        return out, new_state

    return GradientTransformationExtraArgs(init, update)
