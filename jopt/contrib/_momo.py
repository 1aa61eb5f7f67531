"""MoMo and MoMo-Adam: momentum with a Polyak-style step capped by the learning rate."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree as jtree
from jopt.base import GradientTransformationExtraArgs, ScalarOrSchedule, Updates
from jopt.schedules._hyper import value_at, zero_count

# Below this squared norm the momentum is treated as zero (no Polyak step); float64's
# machine epsilon, as in the reference implementation.
_TINY = float(jnp.finfo(float).eps)


def _needs_value(name: str, value) -> None:
    if value is None:
        raise TypeError(  # as optax, whose update takes value as a required argument
            f"value must be passed to {name}'s update (the loss at params), got None; "
            "compute it with jax.value_and_grad and call tx.update(grads, state, params, "
            "value=loss)"
        )


class MomoState(NamedTuple):
    """State of :func:`momo`."""

    exp_avg: Updates  # EMA of the gradients, like params
    barf: jax.Array  # scalar, lowest params dtype: EMA of the loss values
    gamma: jax.Array  # scalar, lowest params dtype: EMA of <g_t, x_t>
    lb: jax.Array  # scalar, lowest params dtype: current lower bound of the loss
    count: jax.Array  # int32 scalar, steps seen (saturates)


def momo(
    learning_rate: ScalarOrSchedule = 1.0,
    beta: float = 0.9,
    lower_bound: float = 0.0,
    weight_decay: float = 0.0,
    adapt_lower_bound: bool = False,
) -> GradientTransformationExtraArgs:
    r"""MoMo: SGD with momentum and a model-based, truncated Polyak step size.

    With :math:`\bar f_t, d_t, \gamma_t` the EMAs (decay :math:`\beta`, zero on the first
    step) of the losses, gradients and :math:`\langle g_t, x_t\rangle`, and
    :math:`\rho = 1 + \alpha_t\lambda`:

    .. math::

        \tau_t = \min\Big(\alpha_t,\;
            \frac{\big(\rho(\bar f_t - f_* - \gamma_t) + \langle d_t, x_t\rangle\big)_+}
                 {\|d_t\|^2}\Big), \quad
        u_t = -\frac{\alpha_t\lambda}{\rho}\, x_t - \tau_t\, d_t

    :math:`f_*` is ``lower_bound`` (or, with ``adapt_lower_bound``, an online estimate).
    ``update`` needs ``params`` and the loss ``value``.

    Args:
      learning_rate: :math:`\alpha_t`, the cap of the step, >= 0 or a schedule. Default 1.
      beta: :math:`\beta`, momentum, in [0, 1). Default 0.9.
      lower_bound: :math:`f_*`, a lower bound of the loss (0 for most losses). Default 0.
      weight_decay: :math:`\lambda`, >= 0. Default 0.
      adapt_lower_bound: estimate :math:`f_*` online, starting at ``lower_bound``.

    References:
      Schaipp, Ohana, Eickenberg, Defazio & Gower, `MoMo: Momentum Models for Adaptive
      Learning Rates <https://arxiv.org/abs/2305.07583>`_, ICML 2024.
    """
    check.learning_rate("learning_rate", learning_rate)
    check.unit_interval("beta", beta)
    check.number("lower_bound", lower_bound)
    check.non_negative("weight_decay", weight_decay)
    check.boolean("adapt_lower_bound", adapt_lower_bound)

    def init(params):
        low = jtree.dtype(params, "lowest")
        zero = jnp.zeros([], low)
        return MomoState(
            jtree.zeros_like(params), zero, zero, jnp.array(lower_bound, low), zero_count()
        )

    def update(updates, state, params=None, *, value=None, **extra_args):
        del extra_args
        check.params_given("momo", params)
        _needs_value("momo", value)
        # The first step takes the plain gradient: no history to average with.
        b = jnp.where(state.count == 0, 0.0, beta)
        barf = b * state.barf + (1 - b) * jnp.asarray(value, state.barf.dtype)
        exp_avg = jax.tree.map(lambda d, g: b * d + (1 - b) * g, state.exp_avg, updates)
        gamma = b * state.gamma + (1 - b) * jtree.vdot(updates, params)
        sq_norm = jtree.norm(exp_avg, squared=True)
        inner = jtree.vdot(exp_avg, params)
        alpha = value_at(learning_rate, state.count)
        rho = 1 + alpha * weight_decay
        if adapt_lower_bound:
            cap = rho * (barf - gamma) + inner
            lb = jax.lax.cond(
                cap < rho * state.lb,
                lambda: jnp.maximum(cap / (2 * rho), lower_bound),
                lambda: state.lb,
            )
        else:
            lb = state.lb
        polyak = jnp.maximum(rho * (barf - lb - gamma) + inner, 0.0) / sq_norm
        polyak = jnp.where(sq_norm <= _TINY, 0.0, polyak)
        tau = jnp.minimum(alpha, polyak)
        out = jax.tree.map(
            lambda d, x: -(alpha * weight_decay) / rho * x - tau * d, exp_avg, params
        )
        if adapt_lower_bound:
            lb = jnp.maximum((barf + inner - gamma) - (1 / 2) * tau * sq_norm, lower_bound)
        else:
            lb = state.lb
        return out, MomoState(exp_avg, barf, gamma, lb, jtree.safe_increment(state.count))

    return GradientTransformationExtraArgs(init, update)


class MomoAdamState(NamedTuple):
    """State of :func:`momo_adam`."""

    exp_avg: Updates  # EMA of the gradients, like params
    exp_avg_sq: Updates  # EMA of the squared gradients, like params
    barf: jax.Array  # scalar, lowest params dtype: EMA of the loss values
    gamma: jax.Array  # scalar, lowest params dtype: EMA of <g_t, x_t>
    lb: jax.Array  # scalar, lowest params dtype: current lower bound of the loss
    count: jax.Array  # int32 scalar, steps seen (saturates)


def momo_adam(
    learning_rate: ScalarOrSchedule = 1e-2,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    lower_bound: float = 0.0,
    weight_decay: float = 0.0,
    adapt_lower_bound: bool = False,
) -> GradientTransformationExtraArgs:
    r"""MoMo-Adam: Adam's preconditioned momentum with MoMo's truncated Polyak step.

    With :math:`D_t = \epsilon + \sqrt{v_t / (1-\beta_2^t)}`, :math:`c_t = 1-\beta_1^t` and
    :math:`\rho = 1 + \alpha_t\lambda` (EMAs with decay :math:`\beta_1` as in :func:`momo`):

    .. math::

        \tau_t = \min\Big(\frac{\alpha_t}{c_t},\;
            \frac{\big(\rho(\bar f_t - c_t f_* - \gamma_t) + \langle d_t, x_t\rangle\big)_+}
                 {\langle d_t, d_t / D_t\rangle}\Big), \quad
        u_t = -\frac{\alpha_t\lambda}{\rho}\, x_t - \tau_t\, d_t / D_t

    ``update`` needs ``params`` and the loss ``value``.

    Args:
      learning_rate: :math:`\alpha_t`, the cap of the step, >= 0 or a schedule. Default 1e-2.
      b1: :math:`\beta_1`, momentum, in [0, 1). Default 0.9.
      b2: :math:`\beta_2`, decay of the second moment, in [0, 1). Default 0.999.
      eps: :math:`\epsilon`, added to the preconditioner, >= 0. Default 1e-8.
      lower_bound: :math:`f_*`, a lower bound of the loss. Default 0.
      weight_decay: :math:`\lambda`, >= 0. Default 0.
      adapt_lower_bound: estimate :math:`f_*` online, starting at ``lower_bound``.

    References:
      Schaipp, Ohana, Eickenberg, Defazio & Gower, `MoMo: Momentum Models for Adaptive
      Learning Rates <https://arxiv.org/abs/2305.07583>`_, ICML 2024.
    """
    check.learning_rate("learning_rate", learning_rate)
    check.unit_interval("b1", b1)
    check.unit_interval("b2", b2, "pass a value in [0, 1) such as 0.999")
    check.non_negative("eps", eps)
    check.number("lower_bound", lower_bound)
    check.non_negative("weight_decay", weight_decay)
    check.boolean("adapt_lower_bound", adapt_lower_bound)

    def init(params):
        low = jtree.dtype(params, "lowest")
        zero = jnp.zeros([], low)
        return MomoAdamState(
            jtree.zeros_like(params), jtree.zeros_like(params), zero, zero,
            jnp.array(lower_bound, low), zero_count(),
        )  # fmt: skip

    def update(updates, state, params=None, *, value=None, **extra_args):
        del extra_args
        check.params_given("momo_adam", params)
        _needs_value("momo_adam", value)
        count = jtree.safe_increment(state.count)
        barf = b1 * state.barf + (1 - b1) * jnp.asarray(value, state.barf.dtype)
        exp_avg = jax.tree.map(lambda d, g: b1 * d + (1 - b1) * g, state.exp_avg, updates)
        exp_avg_sq = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, state.exp_avg_sq, updates)
        bc2 = jnp.asarray(1 - b2**count, barf.dtype)
        precond = jax.tree.map(lambda v: eps + jnp.sqrt(v / bc2), exp_avg_sq)
        sq_norm = jtree.vdot(exp_avg, jtree.div(exp_avg, precond))
        gamma = b1 * state.gamma + (1 - b1) * jtree.vdot(updates, params)
        inner = jtree.vdot(exp_avg, params)
        alpha = value_at(learning_rate, state.count)
        bc1 = jnp.asarray(1 - b1**count, barf.dtype)
        rho = 1 + alpha * weight_decay
        if adapt_lower_bound:
            cap = rho * (barf - gamma) + inner
            lb = jnp.where(
                cap < rho * bc1 * state.lb,
                jnp.maximum(cap / (2 * bc1 * rho), lower_bound),
                state.lb,
            )
        else:
            lb = state.lb
        polyak = jnp.maximum(rho * (barf - bc1 * lb - gamma) + inner, 0.0) / sq_norm
        polyak = jnp.where(sq_norm <= _TINY, 0.0, polyak)
        tau = jnp.minimum(alpha / bc1, polyak)
        out = jax.tree.map(
            lambda d, p, x: -(alpha * weight_decay) / rho * x - tau * d / p,
            exp_avg, precond, params,
        )  # fmt: skip
        if adapt_lower_bound:
            lb = jnp.maximum(((barf + inner - gamma) - (1 / 2) * tau * sq_norm) / bc1, lower_bound)
        else:
            lb = state.lb
        return out, MomoAdamState(exp_avg, exp_avg_sq, barf, gamma, lb, count)

    return GradientTransformationExtraArgs(init, update)
