"""Prodigy: D-Adaptation with a faster-growing estimate of the distance to the solution."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree as jtree
from jopt.base import GradientTransformationExtraArgs, Params, ScalarOrSchedule, Updates
from jopt.contrib._dadapt import check_betas
from jopt.schedules._hyper import value_at, zero_count


class ProdigyState(NamedTuple):
    """State of :func:`prodigy`."""

    exp_avg: Updates  # EMA of d-scaled gradients, like params
    exp_avg_sq: Updates  # EMA of squared d-scaled gradients, like params
    grad_sum: Updates  # EMA (decay beta3) of weighted d-scaled gradients, like params
    params0: Params  # the initial parameters x_0
    estim_lr: jax.Array  # scalar, lowest params dtype: d, the distance estimate
    numerator_weighted: jax.Array  # scalar, lowest params dtype: numerator of d's estimate
    count: jax.Array  # int32 scalar, steps seen (saturates)


def prodigy(
    learning_rate: ScalarOrSchedule = 1.0,
    betas: tuple[float, float] = (0.9, 0.999),
    beta3: float | None = None,
    eps: float = 1e-8,
    estim_lr0: float = 1e-6,
    estim_lr_coef: float = 1.0,
    weight_decay: float = 0.0,
    safeguard_warmup: bool = False,
) -> GradientTransformationExtraArgs:
    r"""Prodigy: learning-rate-free Adam with the distance estimate of Mishchenko & Defazio.

    With :math:`\lambda_t = d_t\,\eta_t \sqrt{1-\beta_2^{t}} / (1-\beta_1^{t})`:

    .. math::

        m_t = \beta_1 m_{t-1} + (1-\beta_1) d_t g_t, \quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) d_t^2 g_t^2, \\
        r_t = \beta_3 r_{t-1} + \tfrac{d_t}{d_0}\lambda_t \langle g_t, x_0 - x_t\rangle, \quad
        s_t = \beta_3 s_{t-1} + \tfrac{\lambda_t}{d_0} d_t g_t, \quad
        d_{t+1} = \max\!\big(d_t,\; c\, r_t / \|s_t\|_1\big), \\
        u_t = -\lambda_t \big(m_t / (\sqrt{v_t} + d_{t+1} \epsilon) + w\, x_t\big)

    With ``safeguard_warmup`` the :math:`s_t` increment uses :math:`d_t` in place of
    :math:`\lambda_t`. The update is already a step; needs ``params``.

    Args:
      learning_rate: :math:`\eta_t`, multiplies the estimated step, >= 0 or a schedule. Default 1.
      betas: :math:`(\beta_1, \beta_2)`, each in [0, 1). Default (0.9, 0.999).
      beta3: :math:`\beta_3`, decay of the estimate's sums, in [0, 1); None means
        :math:`\sqrt{\beta_2}`.
      eps: :math:`\epsilon`, added to the denominator (times :math:`d_{t+1}`), >= 0. Default 1e-8.
      estim_lr0: :math:`d_0`, the initial distance estimate, > 0. Default 1e-6.
      estim_lr_coef: :math:`c`, multiplies the estimate, > 0. Default 1.
      weight_decay: :math:`w`, decoupled weight decay, >= 0. Default 0.
      safeguard_warmup: avoid a too-large d when the learning rate warms up. Default False.

    References:
      Mishchenko & Defazio, `Prodigy: An Expeditiously Adaptive Parameter-Free Learner
      <https://arxiv.org/abs/2306.06101>`_, ICML 2024.
    """
    check.learning_rate("learning_rate", learning_rate)
    beta1, beta2 = check_betas(betas)
    check.optional(check.unit_interval, "beta3", beta3)
    check.non_negative("eps", eps)
    check.positive("estim_lr0", estim_lr0, "pass a small positive value such as 1e-6")
    check.positive("estim_lr_coef", estim_lr_coef)
    check.non_negative("weight_decay", weight_decay)
    check.boolean("safeguard_warmup", safeguard_warmup)
    if beta3 is None:
        beta3 = beta2**0.5

    def init(params):
        # Scalars in the lowest params dtype, so bf16 params are not promoted by the step.
        low = jtree.dtype(params, "lowest")
        return ProdigyState(
            exp_avg=jtree.zeros_like(params),
            exp_avg_sq=jtree.zeros_like(params),
            grad_sum=jtree.zeros_like(params),
            params0=params,
            estim_lr=jnp.asarray(estim_lr0, low),
            numerator_weighted=jnp.zeros([], low),
            count=zero_count(),
        )

    def update(updates, state, params=None, **extra_args):
        del extra_args
        check.params_given("prodigy", params)
        d = state.estim_lr
        count = jtree.safe_increment(state.count)
        correction = ((1 - beta2**count) ** 0.5) / (1 - beta1**count)
        dlr = jnp.asarray(d * value_at(learning_rate, state.count) * correction, d.dtype)
        dg = jtree.scale(d, updates)
        numerator_step = jtree.vdot(updates, jtree.sub(state.params0, params))
        exp_avg = jax.tree.map(lambda m, x: beta1 * m + (1 - beta1) * x, state.exp_avg, dg)
        exp_avg_sq = jax.tree.map(
            lambda v, x: beta2 * v + (1 - beta2) * x * x, state.exp_avg_sq, dg
        )
        step = d if safeguard_warmup else dlr
        grad_sum = jax.tree.map(lambda s, x: beta3 * s + step * x / estim_lr0, state.grad_sum, dg)
        numerator = beta3 * state.numerator_weighted
        numerator += (d / estim_lr0) * dlr * numerator_step
        estimate = estim_lr_coef * numerator / jtree.l1_norm(grad_sum)
        estim_lr = jnp.maximum(d, estimate)
        out = jax.tree.map(
            # The denominator uses the *new* estimate, as the reference implementation does.
            lambda m, v, x: -weight_decay * dlr * x - dlr * m / (jnp.sqrt(v) + estim_lr * eps),
            exp_avg, exp_avg_sq, params,
        )  # fmt: skip
        new_state = ProdigyState(
            exp_avg, exp_avg_sq, grad_sum, state.params0, estim_lr, numerator, count
        )
        return out, new_state

    return GradientTransformationExtraArgs(init, update)
