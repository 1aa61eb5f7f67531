"""ADOPT: Adam whose step is normalised by the second moment of the *previous* steps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree as jtree
from jopt.base import GradientTransformation, GradientTransformationExtraArgs, ScalarOrSchedule
from jopt.schedules._hyper import zero_count
from jopt.transforms import ScaleByAdamState, chain, scale_by_learning_rate


def _fourth_root(count: jax.Array) -> jax.Array:
    """The paper's clipping bound :math:`t^{1/4}`."""
    return count**0.25


def scale_by_adopt(
    b1: float = 0.9,
    b2: float = 0.9999,
    eps: float = 1e-6,
    mu_dtype: Any | None = None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: Callable[[jax.Array], jax.Array] = _fourth_root,
) -> GradientTransformation:
    r"""Rescale updates by ADOPT: normalise first, then average.

    .. math::

        \tilde g_t = \operatorname{clip}\!\big(g_t / \max(\sqrt{\nu_{t-1}}, \epsilon),
            \pm c(t)\big), \quad
        m_t = \beta_1 m_{t-1} + (1-\beta_1)\tilde g_t, \quad
        \nu_t = \beta_2 \nu_{t-1} + (1-\beta_2) g_t^2, \quad u_t = m_t

    On the first step :math:`\nu_0 = g_0^2` and :math:`m_0 = 0` (the update is zero).
    With ``nesterov`` the update is :math:`\beta_1 m_t + (1-\beta_1)\tilde g_t`.

    Args:
      b1: :math:`\beta_1`, decay of the first moment, in [0, 1). Default 0.9.
      b2: :math:`\beta_2`, decay of the second moment, in [0, 1). Default 0.9999.
      eps: lower bound of the denominator, >= 0. Default 1e-6.
      mu_dtype: dtype of the first moment; None keeps the gradients' dtype.
      nesterov: use Nesterov momentum. Default False.
      use_clipping: clip the normalised gradient to :math:`\pm c(t)`. Default True.
      clip_value_fn: :math:`c(t)` as a function of the step count; default :math:`t^{1/4}`.

    References:
      Taniguchi et al., `ADOPT: Modified Adam Can Converge with Any beta2 with the Optimal
      Rate <https://arxiv.org/abs/2411.02853>`_, NeurIPS 2024.
    """
    check.unit_interval("b1", b1)
    check.unit_interval("b2", b2)
    check.non_negative("eps", eps)
    check.boolean("nesterov", nesterov)
    check.boolean("use_clipping", use_clipping)
    check.function("clip_value_fn", clip_value_fn, "lambda count: count**0.25")
    mu_dtype = check.dtype("mu_dtype", mu_dtype)

    def init(params):
        return ScaleByAdamState(
            count=zero_count(),
            mu=jtree.zeros_like(params, dtype=mu_dtype),
            nu=jtree.zeros_like(params),
        )

    def update(updates, state, params=None):
        del params
        # Step 0 only seeds nu with g^2 (b2 -> 0) and leaves mu at zero (b1 -> 1).
        first = state.count == 0
        b1_now = jnp.where(first, 1, b1)
        b2_now = jnp.where(first, 0, b2)
        nu = jtree.update_moment_per_elem_norm(updates, state.nu, b2_now, 2)

        def normalise(g, v):
            scaled = g / jnp.maximum(jnp.sqrt(v), eps)
            if not use_clipping:
                return scaled
            bound = clip_value_fn(state.count)
            return jnp.clip(scaled, -bound, bound)

        normalised = jax.tree.map(normalise, updates, state.nu)
        mu = jtree.update_moment(normalised, state.mu, b1_now, 1)
        out = jtree.update_moment(normalised, mu, b1_now, 1) if nesterov else mu
        new_state = ScaleByAdamState(
            count=jtree.safe_increment(state.count), mu=jtree.cast(mu, mu_dtype), nu=nu
        )
        return out, new_state

    return GradientTransformation(init, update)


def adopt(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.9999,
    eps: float = 1e-6,
    mu_dtype: Any | None = None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: Callable[[jax.Array], jax.Array] = _fourth_root,
) -> GradientTransformationExtraArgs:
    r"""ADOPT: Adam that converges for any :math:`\beta_2` (see :func:`scale_by_adopt`).

    .. math::  x_{t+1} = x_t - \alpha_t\, u_t^{\text{ADOPT}}

    Args:
      learning_rate: :math:`\alpha_t`, a number >= 0 or a schedule.
      b1: decay of the first moment, in [0, 1). Default 0.9.
      b2: decay of the second moment, in [0, 1). Default 0.9999.
      eps: lower bound of the denominator, >= 0. Default 1e-6.
      mu_dtype: dtype of the first moment; None keeps the gradients' dtype.
      nesterov: use Nesterov momentum. Default False.
      use_clipping: clip the normalised gradient (recommended from scratch). Default True.
      clip_value_fn: the clipping bound as a function of the step; default :math:`t^{1/4}`.

    References:
      Taniguchi et al., `ADOPT: Modified Adam Can Converge with Any beta2 with the Optimal
      Rate <https://arxiv.org/abs/2411.02853>`_, NeurIPS 2024.
    """
    check.learning_rate("learning_rate", learning_rate)
    return chain(
        scale_by_adopt(
            b1, b2, eps, mu_dtype,
            nesterov=nesterov, use_clipping=use_clipping, clip_value_fn=clip_value_fn,
        ),
        scale_by_learning_rate(learning_rate),
    )  # fmt: skip
