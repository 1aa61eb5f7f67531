r"""Numerical hygiene of updates: drop NaNs, keep params non-negative, centre, normalize.

Each block is stateless (or only records what it saw) and leaves the update's
dtype unchanged.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree
from jopt._flat._capability import refusing_empty_init
from jopt.base import EmptyState, GradientTransformation, init_empty_state


class ZeroNansState(NamedTuple):
    """State of :func:`zero_nans`."""

    found_nan: Any  # bool scalar per leaf, like params: a NaN was zeroed at the last update


def zero_nans() -> GradientTransformation:
    r"""Replace NaNs in the updates by zeros: :math:`u_t = g_t` where finite-or-inf, else 0.

    The state records, per leaf, whether the last update held a NaN, so a training
    loop can report it; the transform itself never reads it.
    """

    def init(params):
        return ZeroNansState(found_nan=jax.tree.map(lambda _: jnp.array(False), params))

    def update(updates, state, params=None):
        del state, params
        found = jax.tree.map(lambda g: jnp.any(jnp.isnan(g)), updates)
        updates = jax.tree.map(lambda g: jnp.where(jnp.isnan(g), jnp.zeros_like(g), g), updates)
        return updates, ZeroNansState(found_nan=found)

    return GradientTransformation(init, update)


def keep_params_nonnegative() -> GradientTransformation:
    r"""Clip updates so that params stay >= 0: :math:`u_t = -p_t` where :math:`p_t + g_t < 0`.

    Place it last in a chain, since it reasons about the final step. A param that is
    already negative is moved to 0.

    References:
      Bertsekas, `On the Goldstein-Levitin-Polyak Gradient Projection Method
      <https://doi.org/10.1109/TAC.1976.1101194>`_, IEEE TAC, 1976 (projection onto
      the constraint set, here the non-negative orthant).
    """

    def update(updates, state, params=None):
        check.params_given("keep_params_nonnegative", params)
        updates = jax.tree.map(
            lambda p, u: None if p is None else jnp.where(p + u < 0.0, -p, u),
            params,
            updates,
            is_leaf=lambda x: x is None,
        )
        return updates, state

    return GradientTransformation(init_empty_state, update)


def _subtract_mean(g: jax.Array) -> jax.Array:
    # Vectors and scalars have no "fan-in" axes to centre over: left unchanged.
    if g.ndim < 2:
        return g
    return g - g.mean(axis=tuple(range(1, g.ndim)), keepdims=True)


def centralize() -> GradientTransformation:
    r"""Gradient centralization: subtract, for each leading index, the mean over the other axes.

    .. math::  u_{t,i} = g_{t,i} - \operatorname{mean}_{j}(g_{t,i,j})

    Leaves with fewer than two dimensions pass through.

    References:
      Yong et al., `Gradient Centralization: A New Optimization Technique for Deep Neural
      Networks <https://arxiv.org/abs/2004.01461>`_, 2020.
    """

    def update(updates, state, params=None):
        del params
        return jax.tree.map(_subtract_mean, updates), state

    return GradientTransformation(refusing_empty_init("centralize"), update)


def normalize_by_update_norm(
    scale_factor: float | jax.Array = 1.0, eps: float | jax.Array = 1e-6
) -> GradientTransformation:
    r"""Divide the updates by their global norm: :math:`u_t = s\, g_t / (\|g_t\|_2 + \epsilon)`.

    Args:
      scale_factor: :math:`s`, a non-zero number (default 1.0; -1.0 gives a descent step).
      eps: :math:`\epsilon`, added to the norm, >= 0 (default 1e-6).

    References:
      Hazan, Levy & Shalev-Shwartz, `Beyond Convexity: Stochastic Quasi-Convex
      Optimization <https://arxiv.org/abs/1507.02030>`_, 2015 (normalized gradient descent).
    """
    check.number("scale_factor", scale_factor)
    check.non_negative("eps", eps)

    def update(updates, state, params=None):
        del params
        g_norm = (tree.norm(updates) + eps) / scale_factor
        return jax.tree.map(lambda g: (g / g_norm).astype(g.dtype), updates), state

    return GradientTransformation(init_empty_state, update)


NonNegativeParamsState = EmptyState
"""State of :func:`keep_params_nonnegative` (empty; optax's name)."""
