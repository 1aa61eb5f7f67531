r"""Adafactor's scaling: the second moment of a matrix kept as a row and a column vector."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jopt import _check as check
from jopt import tree
from jopt._flat._capability import refuse_flat
from jopt.base import ArrayTree, GradientTransformation
from jopt.schedules._hyper import zero_count


def _decay_rate_pow(i: Any, exponent: Any = 0.8) -> jax.Array:
    """Adafactor's second-moment decay :math:`1 - (i+1)^{-\\text{exponent}}`."""
    t = jnp.array(i + 1, jnp.float32)
    return 1.0 - t ** (-exponent)


def _factored_dims(shape: tuple[int, ...], factored: bool, min_dim_size_to_factor: int):
    """The (second largest, largest) axes to factor over, or None to keep a full moment."""
    if not factored or len(shape) < 2:
        return None
    order = np.argsort(shape)
    if shape[order[-2]] < min_dim_size_to_factor:
        return None
    return int(order[-2]), int(order[-1])


def _zeros_without_axis(x: jax.Array, axis: int) -> jax.Array:
    # Shaped (and, under sharding-in-types, sharded) like a reduction over ``axis``.
    return jnp.zeros_like(jax.eval_shape(lambda y: jnp.sum(y, axis=axis), x))


class FactoredState(NamedTuple):
    """State of :func:`scale_by_factored_rms` (optax's name). Unused slots hold a (1,) zero."""

    count: jax.Array  # int32 scalar, number of updates seen (saturates)
    v_row: ArrayTree  # factored leaves: row statistics (largest axis reduced); like params
    v_col: ArrayTree  # factored leaves: column statistics (2nd largest axis reduced)
    v: ArrayTree  # unfactored leaves: full second moment, like params


def scale_by_factored_rms(
    factored: bool = True,
    decay_rate: float | jax.Array = 0.8,
    step_offset: int | jax.Array = 0,
    min_dim_size_to_factor: int = 128,
    epsilon: float | jax.Array = 1e-30,
    decay_rate_fn: Callable[[Any, Any], Any] = _decay_rate_pow,
) -> GradientTransformation:
    r"""Divide updates by a factored estimate of the gradient's root mean square.

    With :math:`\hat\beta_t` = ``decay_rate_fn(t - step_offset, decay_rate)``
    (default :math:`1 - (t+1)^{-0.8}`) and :math:`G = g_t^2 + \epsilon`, a leaf whose two
    largest axes are both >= ``min_dim_size_to_factor`` keeps

    .. math::
        R_t = \hat\beta_t R_{t-1} + (1-\hat\beta_t)\operatorname{mean}_{col}(G), \quad
        C_t = \hat\beta_t C_{t-1} + (1-\hat\beta_t)\operatorname{mean}_{row}(G), \quad
        u_t = g_t \Big/ \sqrt{\frac{R_t C_t}{\operatorname{mean}(R_t)}}

    and any other leaf keeps a full :math:`v_t = \hat\beta_t v_{t-1} + (1-\hat\beta_t) G`,
    :math:`u_t = g_t / \sqrt{v_t}`.

    Args:
      factored: factor matrices (default True); False keeps full moments everywhere.
      decay_rate: the decay schedule's parameter (the exponent of the default), >= 0
        (default 0.8).
      step_offset: subtracted from the step count, e.g. the first step of fine-tuning,
        >= 0 (default 0).
      min_dim_size_to_factor: factor only when the two largest axes are at least this
        long, an integer >= 1 (default 128).
      epsilon: :math:`\epsilon`, added to the squared gradient, >= 0 (default 1e-30).
      decay_rate_fn: ``(step, decay_rate) -> decay``, the second-moment decay schedule.

    References:
      Shazeer & Stern, `Adafactor: Adaptive Learning Rates with Sublinear Memory Cost
      <https://arxiv.org/abs/1804.04235>`_, 2018; Zhai et al., `Scaling Vision
      Transformers <https://arxiv.org/abs/2106.04560>`_, 2021.
    """
    check.boolean("factored", factored)
    check.function("decay_rate_fn", decay_rate_fn, "lambda step, decay_rate: 0.999")
    if decay_rate_fn is _decay_rate_pow:
        check.non_negative("decay_rate", decay_rate, "pass an exponent >= 0 such as 0.8")
    else:
        check.number("decay_rate", decay_rate)
    check.whole_number("step_offset", step_offset, 0, "pass the first step to count, e.g. 0")
    check.integer(
        "min_dim_size_to_factor", min_dim_size_to_factor, 1, "pass 1 to factor every matrix"
    )
    check.non_negative("epsilon", epsilon)

    def init_leaf(p):
        one = jnp.zeros((1,), dtype=p.dtype)
        dims = _factored_dims(p.shape, factored, min_dim_size_to_factor)
        if dims is None:
            return one, one, jnp.zeros_like(p)
        d1, d0 = dims
        return _zeros_without_axis(p, d0), _zeros_without_axis(p, d1), one

    def update_leaf(g, v_row, v_col, v, p, count):
        dtype = p.dtype
        decay = decay_rate_fn(count - step_offset, decay_rate)
        one = jnp.zeros((1,), dtype=dtype)
        grad_sq = jnp.real(g.conj() * g) + epsilon
        dims = _factored_dims(p.shape, factored, min_dim_size_to_factor)
        if dims is None:
            new_v = (decay * v + (1.0 - decay) * grad_sq).astype(dtype)
            return g * new_v**-0.5, one, one, new_v
        d1, d0 = dims
        new_row = (decay * v_row + (1.0 - decay) * jnp.mean(grad_sq, axis=d0)).astype(dtype)
        new_col = (decay * v_col + (1.0 - decay) * jnp.mean(grad_sq, axis=d1)).astype(dtype)
        row_axis = d1 - 1 if d1 > d0 else d1  # d1's index once d0 is reduced away
        row_factor = (new_row / jnp.mean(new_row, axis=row_axis, keepdims=True)) ** -0.5
        col_factor = new_col**-0.5
        u = g * jnp.expand_dims(row_factor, axis=d0) * jnp.expand_dims(col_factor, axis=d1)
        return u, new_row, new_col, one

    def init(params):
        refuse_flat("scale_by_factored_rms", params)
        treedef = jax.tree.structure(params)
        leaves = [init_leaf(p) for p in treedef.flatten_up_to(params)]
        rows, cols, vs = zip(*leaves, strict=True) if leaves else ((), (), ())
        return FactoredState(
            count=zero_count(),
            v_row=treedef.unflatten(rows),
            v_col=treedef.unflatten(cols),
            v=treedef.unflatten(vs),
        )

    def update(updates, state, params=None):
        check.params_given("scale_by_factored_rms", params)
        treedef = jax.tree.structure(updates)
        columns = [
            treedef.flatten_up_to(t) for t in (updates, state.v_row, state.v_col, state.v, params)
        ]
        results = [update_leaf(*args, state.count) for args in zip(*columns, strict=True)]
        new_updates, rows, cols, vs = zip(*results, strict=True) if results else ((), (), (), ())
        return treedef.unflatten(new_updates), FactoredState(
            count=tree.safe_increment(state.count),
            v_row=treedef.unflatten(rows),
            v_col=treedef.unflatten(cols),
            v=treedef.unflatten(vs),
        )

    return GradientTransformation(init, update)
