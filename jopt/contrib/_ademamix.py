"""AdEMAMix: Adam plus a slow EMA of the gradients; and its simplified, bias-free variant."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree as jtree
from jopt.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    ScalarOrSchedule,
    Updates,
)
from jopt.schedules._hyper import value_at, zero_count
from jopt.transforms import add_decayed_weights, chain, scale_by_learning_rate


class ScaleByAdemamixState(NamedTuple):
    """State of :func:`scale_by_ademamix`."""

    count: jax.Array  # int32 scalar, steps seen (saturates); drives the bias corrections
    count_m2: jax.Array  # int32 scalar, steps seen by the slow EMA; drives b3/alpha schedules
    m1: Updates  # fast EMA of the gradients, like params (mu_dtype)
    m2: Updates  # slow EMA of the gradients, like params (mu_dtype)
    nu: Updates  # EMA of the squared gradients, like params (mu_dtype)


def scale_by_ademamix(
    b1: float = 0.9,
    b2: float = 0.999,
    b3: ScalarOrSchedule = 0.9999,
    alpha: ScalarOrSchedule = 6.0,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any | None = None,
) -> GradientTransformation:
    r"""Rescale updates by AdEMAMix: a bias-corrected fast EMA plus a weighted slow EMA.

    .. math::

        m^{(1)}_t = \beta_1 m^{(1)}_{t-1} + (1-\beta_1) g_t, \quad
        m^{(2)}_t = \beta_3 m^{(2)}_{t-1} + (1-\beta_3) g_t, \quad
        \nu_t = \beta_2 \nu_{t-1} + (1-\beta_2) g_t^2, \\
        u_t = \frac{\hat m^{(1)}_t + \alpha\, m^{(2)}_t}
                   {\sqrt{\hat\nu_t + \bar\epsilon} + \epsilon},
        \quad \hat m^{(1)}_t = \frac{m^{(1)}_t}{1-\beta_1^t}, \;
        \hat\nu_t = \frac{\nu_t}{1-\beta_2^t}

    Args:
      b1: :math:`\beta_1`, decay of the fast EMA, in [0, 1). Default 0.9.
      b2: :math:`\beta_2`, decay of the second moment, in [0, 1). Default 0.999.
      b3: :math:`\beta_3`, decay of the slow EMA, in [0, 1), or a schedule. Default 0.9999.
      alpha: :math:`\alpha`, weight of the slow EMA, >= 0, or a schedule. Default 6.0.
      eps: :math:`\epsilon`, added to the denominator, >= 0. Default 1e-8.
      eps_root: :math:`\bar\epsilon`, added inside the square root, >= 0. Default 0.
      mu_dtype: dtype of the three moments; None keeps the gradients' dtype.

    References:
      Pagliardini et al., `The AdEMAMix Optimizer: Better, Faster, Older
      <https://arxiv.org/abs/2409.03137>`_, 2024.
    """
    check.unit_interval("b1", b1)
    check.unit_interval("b2", b2)
    check.unit_interval("b3", b3, schedule=True)
    check.non_negative("alpha", alpha, schedule=True)
    check.non_negative("eps", eps)
    check.non_negative("eps_root", eps_root)
    mu_dtype = check.dtype("mu_dtype", mu_dtype)

    def init(params):
        return ScaleByAdemamixState(
            count=zero_count(),
            count_m2=zero_count(),
            m1=jtree.zeros_like(params, dtype=mu_dtype),
            m2=jtree.zeros_like(params, dtype=mu_dtype),
            nu=jtree.zeros_like(params, dtype=mu_dtype),
        )

    def update(updates, state, params=None):
        del params
        b3_now = value_at(b3, state.count_m2)
        alpha_now = value_at(alpha, state.count_m2)
        m1 = jtree.update_moment(updates, state.m1, b1, 1)
        m2 = jtree.update_moment(updates, state.m2, b3_now, 1)
        nu = jtree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
        count = jtree.safe_increment(state.count)
        m1_hat = jtree.bias_correction(m1, b1, count)
        nu_hat = jtree.bias_correction(nu, b2, count)
        out = jax.tree.map(
            lambda fast, slow, v: (fast + alpha_now * slow) / (jnp.sqrt(v + eps_root) + eps),
            m1_hat, m2, nu_hat,
        )  # fmt: skip
        # Unlike optax 0.2.8, the moments are cast back to mu_dtype, so the state keeps
        # its dtype from step to step (optax's turns float32 and retraces).
        m1, m2, nu = (jtree.cast(t, mu_dtype) for t in (m1, m2, nu))
        new_state = ScaleByAdemamixState(
            count=count, count_m2=jtree.safe_increment(state.count_m2), m1=m1, m2=m2, nu=nu
        )
        return out, new_state

    return GradientTransformation(init, update)


def ademamix(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    b3: ScalarOrSchedule = 0.9999,
    alpha: ScalarOrSchedule = 5.0,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any | None = None,
    weight_decay: float = 0.0,
    mask: Any | Callable[[Any], Any] | None = None,
) -> GradientTransformationExtraArgs:
    r"""AdEMAMix: Adam with a second, slow gradient EMA (see :func:`scale_by_ademamix`).

    .. math::  x_{t+1} = x_t - \alpha_t\,\big(u_t^{\text{AdEMAMix}} + \lambda x_t\big)

    Args:
      learning_rate: :math:`\alpha_t`, a number >= 0 or a schedule.
      b1: decay of the fast EMA, in [0, 1). Default 0.9.
      b2: decay of the second moment, in [0, 1). Default 0.999.
      b3: decay of the slow EMA, in [0, 1), or a schedule. Default 0.9999.
      alpha: weight of the slow EMA, >= 0, or a schedule. Default 5.0.
      eps: added to the denominator, >= 0. Default 1e-8.
      eps_root: added inside the square root, >= 0. Default 0.
      mu_dtype: dtype of the moments; None keeps the gradients' dtype.
      weight_decay: :math:`\lambda`, decoupled weight decay, >= 0. Default 0.
      mask: tree of booleans (or a function of the params) selecting the leaves to decay.

    References:
      Pagliardini et al., `The AdEMAMix Optimizer: Better, Faster, Older
      <https://arxiv.org/abs/2409.03137>`_, 2024.
    """
    check.learning_rate("learning_rate", learning_rate)
    return chain(
        scale_by_ademamix(b1, b2, b3, alpha, eps, eps_root, mu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


class ScaleBySimplifiedAdEMAMixState(NamedTuple):
    """State of :func:`scale_by_simplified_ademamix`."""

    t: jax.Array  # int32 scalar, steps seen (saturates)
    m: Updates  # accumulated (not averaged) momentum, like params
    n: Updates  # EMA of the squared gradients, like params


def scale_by_simplified_ademamix(
    b1: float = 0.99,
    b2: float = 0.95,
    alpha: ScalarOrSchedule = 0.0,
    eps: float = 1e-8,
    eps_root: float = 0.0,
) -> GradientTransformation:
    r"""Rescale updates by simplified AdEMAMix: one un-normalised momentum plus the gradient.

    .. math::

        m_t = \beta_1 m_{t-1} + g_t, \quad
        n_t = \beta_2 n_{t-1} + (1-\beta_2) g_t^2, \quad
        u_t = \frac{m_t + \alpha\, g_t}{\sqrt{n_t / (1-\beta_2^t) + \bar\epsilon} + \epsilon}

    Args:
      b1: :math:`\beta_1`, momentum decay, in [0, 1). Default 0.99.
      b2: :math:`\beta_2`, decay of the second moment, in [0, 1). Default 0.95.
      alpha: :math:`\alpha`, weight of the current gradient, >= 0, or a schedule. Default 0.
      eps: :math:`\epsilon`, added to the denominator, >= 0. Default 1e-8.
      eps_root: :math:`\bar\epsilon`, added inside the square root, >= 0. Default 0.

    References:
      Morwani et al., `Connections between Schedule-Free Optimizers, AdEMAMix, and
      Accelerated SGD Variants <https://arxiv.org/abs/2502.02431>`_, 2025.
    """
    check.unit_interval("b1", b1)
    check.unit_interval("b2", b2)
    check.non_negative("alpha", alpha, schedule=True)
    check.non_negative("eps", eps)
    check.non_negative("eps_root", eps_root)

    def init(params):
        return ScaleBySimplifiedAdEMAMixState(
            t=zero_count(), m=jtree.zeros_like(params), n=jtree.zeros_like(params)
        )

    def update(updates, state, params=None):
        del params
        alpha_now = value_at(alpha, state.t)
        m = jtree.add_scale(updates, b1, state.m)
        # n + b2 (old - n) with n = g^2: an EMA written as a lerp, as optax does.
        squared = jtree.mul(updates, updates)
        n = jtree.add_scale(squared, b2, jtree.sub(state.n, squared))
        t = jtree.safe_increment(state.t)
        n_hat = jtree.bias_correction(n, b2, t)
        numerator = jtree.add_scale(m, alpha_now, updates)
        denominator = jax.tree.map(lambda v: jnp.sqrt(v + eps_root) + eps, n_hat)
        return jtree.div(numerator, denominator), ScaleBySimplifiedAdEMAMixState(t=t, m=m, n=n)

    return GradientTransformation(init, update)


def simplified_ademamix(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.99,
    b2: float = 0.95,
    alpha: ScalarOrSchedule = 0.0,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    weight_decay: float = 0.0,
    mask: Any | Callable[[Any], Any] | None = None,
) -> GradientTransformationExtraArgs:
    r"""Simplified AdEMAMix (see :func:`scale_by_simplified_ademamix`).

    .. math::  x_{t+1} = x_t - \alpha_t\,\big(u_t + \lambda x_t\big)

    Args:
      learning_rate: :math:`\alpha_t`, a number >= 0 or a schedule.
      b1: momentum decay, in [0, 1). Default 0.99.
      b2: decay of the second moment, in [0, 1). Default 0.95.
      alpha: weight of the current gradient, >= 0, or a schedule. Default 0.
      eps: added to the denominator, >= 0. Default 1e-8.
      eps_root: added inside the square root, >= 0. Default 0.
      weight_decay: :math:`\lambda`, decoupled weight decay, >= 0. Default 0.
      mask: tree of booleans (or a function of the params) selecting the leaves to decay.

    References:
      Morwani et al., `Connections between Schedule-Free Optimizers, AdEMAMix, and
      Accelerated SGD Variants <https://arxiv.org/abs/2502.02431>`_, 2025.
    """
    check.learning_rate("learning_rate", learning_rate)
    return chain(
        scale_by_simplified_ademamix(b1, b2, alpha, eps, eps_root),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
