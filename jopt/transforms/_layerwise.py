r"""Layer-wise scaling: each leaf (a "block", e.g. one weight matrix) scaled by a norm.

Used by :func:`jopt.lars`, :func:`jopt.lamb`, :func:`jopt.fromage` and
:func:`jopt.adafactor`. All three blocks are stateless and need ``params``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt._flat._leaf_rows import floored_row_norm, map_leaf_rows
from jopt._flat._tree import FlatTree
from jopt.base import EmptyState, GradientTransformation, init_empty_state


def _floored(statistic, x: jax.Array, floor) -> jax.Array:
    """``max(statistic(x), floor)`` whose gradient is 0 (not NaN) where the floor wins."""
    value = statistic(x)
    # Differentiating the norm at x = 0 gives NaN; feeding ones on the floored branch
    # keeps both branches finite, so the unused one contributes a zero gradient.
    safe_x = jnp.where(value <= floor, jnp.ones_like(x), x)
    return jnp.where(value <= floor, floor, statistic(safe_x))


def _norm(x: jax.Array) -> jax.Array:
    return jnp.linalg.norm(x)


def _rms(x: jax.Array) -> jax.Array:
    return jnp.sqrt(jnp.mean(jnp.real(x.conj() * x)))


def _leafwise(f, updates, params):
    """``f(u, p, norm, rms)`` leaf by leaf, or by blocks of leaves on a FlatTree, where
    ``norm(x, floor)`` and ``rms(x, floor)`` are the statistic floored at ``floor``."""
    if isinstance(updates, FlatTree):
        norm = lambda x, floor: floored_row_norm(x, floor)  # noqa: E731
        rms = lambda x, floor: floored_row_norm(x, floor, mean=True)  # noqa: E731
        return map_leaf_rows(lambda u, p: f(u, p, norm, rms), updates, params)
    norm = lambda x, floor: _floored(_norm, x, floor)  # noqa: E731
    rms = lambda x, floor: _floored(_rms, x, floor)  # noqa: E731
    return jax.tree.map(lambda u, p: f(u, p, norm, rms), updates, params)


def scale_by_trust_ratio(
    min_norm: float | jax.Array = 0.0,
    trust_coefficient: float | jax.Array = 1.0,
    eps: float | jax.Array = 0.0,
) -> GradientTransformation:
    r"""Scale each leaf's update by the ratio of the param norm to the update norm.

    .. math::  u_t = g_t \cdot c\,\frac{\max(\|p_t\|, m)}{\max(\|g_t\|, m) + \epsilon}

    where the ratio is replaced by 1 when either norm is 0 (a zero-initialised layer
    would otherwise never move).

    Args:
      min_norm: :math:`m`, lower bound of both norms, >= 0 (default 0.0).
      trust_coefficient: :math:`c`, multiplier of the ratio, >= 0 (default 1.0).
      eps: :math:`\epsilon`, added to the denominator, >= 0 (default 0.0).

    References:
      You et al., `Large Batch Training of Convolutional Networks
      <https://arxiv.org/abs/1708.03888>`_, 2017.
    """
    check.non_negative("min_norm", min_norm)
    check.non_negative("trust_coefficient", trust_coefficient)
    check.non_negative("eps", eps)

    def scale_leaf(u, p, norm, rms):
        del rms
        param_norm = norm(p, min_norm)
        update_norm = norm(u, min_norm)
        ratio = trust_coefficient * param_norm / (update_norm + eps)
        degenerate = jnp.logical_or(param_norm == 0.0, update_norm == 0.0)
        return u * jnp.where(degenerate, jnp.array(1.0, dtype=p.dtype), ratio)

    def update(updates, state, params=None):
        check.params_given("scale_by_trust_ratio", params)
        return _leafwise(scale_leaf, updates, params), state

    return GradientTransformation(init_empty_state, update)


def scale_by_param_block_norm(min_scale: float | jax.Array = 1e-3) -> GradientTransformation:
    r"""Scale each leaf's update by its param's norm: :math:`u_t = g_t \max(\|p_t\|_2, s)`.

    Args:
      min_scale: :math:`s`, the smallest scale, >= 0 (default 1e-3).

    References:
      Bernstein et al., `On the Distance Between Two Neural Networks and the Stability of
      Learning <https://arxiv.org/abs/2002.03432>`_, 2020 (Fromage's relative step).
    """
    check.non_negative("min_scale", min_scale)

    def update(updates, state, params=None):
        check.params_given("scale_by_param_block_norm", params)
        updates = _leafwise(lambda u, p, norm, _: u * norm(p, min_scale), updates, params)
        return updates, state

    return GradientTransformation(init_empty_state, update)


def scale_by_param_block_rms(min_scale: float | jax.Array = 1e-3) -> GradientTransformation:
    r"""Scale each leaf's update by its param's RMS: :math:`u_t = g_t \max(\mathrm{rms}(p_t), s)`.

    Args:
      min_scale: :math:`s`, the smallest scale, >= 0 (default 1e-3).

    References:
      Shazeer & Stern, `Adafactor: Adaptive Learning Rates with Sublinear Memory Cost
      <https://arxiv.org/abs/1804.04235>`_, 2018 (relative step size).
    """
    check.non_negative("min_scale", min_scale)

    def update(updates, state, params=None):
        check.params_given("scale_by_param_block_rms", params)
        updates = _leafwise(lambda u, p, _, rms: u * rms(p, min_scale), updates, params)
        return updates, state

    return GradientTransformation(init_empty_state, update)


ScaleByTrustRatioState = EmptyState
"""State of :func:`scale_by_trust_ratio` (empty; optax's name)."""
