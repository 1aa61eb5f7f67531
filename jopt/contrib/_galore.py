"""GaLore: run an optimizer on low-rank projections of the matrix gradients."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree as jtree
from jopt._flat._capability import refuse_flat
from jopt.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    OptState,
    ScalarOrSchedule,
    Updates,
)
from jopt.schedules._hyper import zero_count
from jopt.transforms import add_decayed_weights, chain, scale_by_adam, scale_by_learning_rate


class GaLoreDimensionNumbers(NamedTuple):
    """Which axes of a weight form the rows (reduction) and columns (output) of its matrix.

    Attributes:
      reduction_axis: the row axis or axes. Default 0.
      output_axis: the column axis or axes. Default 1.
    """

    reduction_axis: Sequence[int] | int = 0
    output_axis: Sequence[int] | int = 1


def _is_dims(x: Any) -> bool:
    return isinstance(x, GaLoreDimensionNumbers)


def _is_dims_leaf(x: Any) -> bool:
    return x is None or isinstance(x, GaLoreDimensionNumbers)


def _as_matrix(x: jax.Array, dims: GaLoreDimensionNumbers):
    """(to_matrix, from_matrix) for ``x`` seen as a (rows, columns) matrix."""
    if x.ndim < 2:
        raise ValueError(f"GaLore needs tensors of rank >= 2, got shape {x.shape}")

    def normal(axes):
        return tuple(a % x.ndim for a in ((axes,) if isinstance(axes, int) else axes))

    rows, cols = normal(dims.reduction_axis), normal(dims.output_axis)
    if set(rows) & set(cols):
        raise ValueError(
            f"reduction_axis {rows} and output_axis {cols} must be disjoint for shape {x.shape}"
        )
    if len(set(rows) | set(cols)) != x.ndim:
        raise ValueError(
            f"GaLoreDimensionNumbers must name every axis, got reduction={rows}, "
            f"output={cols} for shape {x.shape}"
        )
    order = rows + cols
    inverse = tuple(sorted(range(x.ndim), key=lambda i: order[i]))
    shape = tuple(x.shape[a] for a in order)
    size = (math.prod(x.shape[a] for a in rows), math.prod(x.shape[a] for a in cols))
    return (lambda y: y.transpose(order).reshape(size),
            lambda y: y.reshape(shape).transpose(inverse))  # fmt: skip


class GaLoreState(NamedTuple):
    """State of :func:`scale_by_galore`."""

    count: jax.Array  # int32 scalar, steps seen (saturates)
    base_optimizer_state: OptState  # the base optimizer's state, over the projected gradients
    projector: Updates  # P per leaf: (m, r) or (n, r); (0, 0) for leaves left full-rank


def scale_by_galore(
    rank: int = 128,
    update_proj_gap: int = 200,
    scale: float = 1.0,
    base_optimizer: GradientTransformation | None = None,
    weight_dimension_numbers: Any | None = None,
) -> GradientTransformation:
    r"""Project matrix gradients to rank :math:`r`, run ``base_optimizer``, project back.

    For an :math:`m \times n` gradient with :math:`m \ge n` (else the mirror image):

    .. math::

        P = U_{:, :r} \;(\text{from } G_t = U\Sigma V^\top,\ \text{every }T\text{ steps}),
        \quad u_t = s\, P\, \rho\big(P^\top G_t\big)

    Leaves without dimension numbers (by default, all but matrices) go to
    ``base_optimizer`` at full size.

    Args:
      rank: :math:`r`, an integer >= 1 (capped by the matrix size). Default 128.
      update_proj_gap: :math:`T`, steps between projector refreshes, an integer >= 1.
      scale: :math:`s`, multiplies the projected-back update. Default 1.
      base_optimizer: :math:`\rho`; None uses :func:`jopt.scale_by_adam`.
      weight_dimension_numbers: a :class:`GaLoreDimensionNumbers` for every leaf of rank
        >= 2, a tree of them (None for full-rank leaves), or a function of the params
        returning such a tree; None projects the 2-D leaves.

    References:
      Zhao et al., `GaLore: Memory-Efficient LLM Training by Gradient Low-Rank Projection
      <https://arxiv.org/abs/2403.03507>`_, ICML 2024.
    """
    check.integer("rank", rank, minimum=1)
    check.integer("update_proj_gap", update_proj_gap, minimum=1)
    check.number("scale", scale)
    check.dimension_numbers(
        "weight_dimension_numbers", weight_dimension_numbers, GaLoreDimensionNumbers
    )
    base_optimizer = scale_by_adam() if base_optimizer is None else base_optimizer
    check.transformation("base_optimizer", base_optimizer)

    def dims_of(params):
        if weight_dimension_numbers is None:
            return jax.tree.map(lambda p: GaLoreDimensionNumbers() if p.ndim == 2 else None, params)
        if callable(weight_dimension_numbers):
            return weight_dimension_numbers(params)
        if _is_dims(weight_dimension_numbers):
            return jax.tree.map(lambda p: weight_dimension_numbers if p.ndim >= 2 else None, params)
        return weight_dimension_numbers

    def layout(p, dims):
        """(rows, cols, effective rank, project on the left?) of ``p`` as a matrix."""
        rows, cols = _as_matrix(p, dims)[0](p).shape
        return rows, cols, min(rank, rows, cols), rows >= cols

    def shapes(p, dims):
        if dims is None:
            return jnp.zeros((0, 0), p.dtype), jnp.zeros_like(p)
        rows, cols, r, left = layout(p, dims)
        projector = (rows, r) if left else (cols, r)
        proxy = (r, cols) if left else (rows, r)
        return jnp.zeros(projector, p.dtype), jnp.zeros(proxy, p.dtype)

    def split_pairs(tree, pairs):
        return jax.tree.transpose(jax.tree.structure(tree), jax.tree.structure((0, 0)), pairs)

    def init(params):
        refuse_flat("scale_by_galore", params)
        if not jax.tree.leaves(params):
            return GaLoreState(zero_count(), base_optimizer.init(params), params)
        pairs = jax.tree.map(shapes, params, dims_of(params), is_leaf=_is_dims_leaf)
        projectors, proxies = split_pairs(params, pairs)
        return GaLoreState(zero_count(), base_optimizer.init(proxies), projectors)

    def update(updates, state, params=None):
        del params
        refresh = (state.count % update_proj_gap) == 0
        dims = dims_of(updates)

        def project(g, projector, d):
            if d is None:
                return g, projector
            g2 = _as_matrix(g, d)[0](g)
            _, _, r, left = layout(g, d)

            def fresh():
                # The SVD in float32: bfloat16 SVDs are unsupported or inaccurate.
                u, _, vh = jnp.linalg.svd(g2.astype(jnp.float32), full_matrices=False)
                return (u[:, :r] if left else vh[:r, :].T).astype(g.dtype)

            projector = jax.lax.cond(refresh, fresh, lambda: projector)
            return (projector.T @ g2 if left else g2 @ projector), projector

        pairs = jax.tree.map(project, updates, state.projector, dims, is_leaf=_is_dims_leaf)
        low_rank, projectors = split_pairs(updates, pairs)
        low_updates, base_state = base_optimizer.update(low_rank, state.base_optimizer_state, None)

        def back(u, projector, g, d):
            if d is None:
                return u
            _, _, _, left = layout(g, d)
            full = projector @ u if left else u @ projector.T
            return (scale * _as_matrix(g, d)[1](full)).astype(g.dtype)

        out = jax.tree.map(back, low_updates, projectors, updates, dims, is_leaf=_is_dims_leaf)
        return out, GaLoreState(jtree.safe_increment(state.count), base_state, projectors)

    return GradientTransformation(init, update)


def galore(
    learning_rate: ScalarOrSchedule,
    rank: int = 128,
    update_proj_gap: int = 200,
    scale: float = 1.0,
    base_optimizer: GradientTransformation | None = None,
    weight_decay: float = 0.0,
    mask: Any | Callable[[Any], Any] | None = None,
    weight_dimension_numbers: Any | None = None,
) -> GradientTransformationExtraArgs:
    r"""GaLore (see :func:`scale_by_galore`), then decoupled weight decay and the step.

    .. math::  x_{t+1} = x_t - \alpha_t\,\big(u_t^{\text{GaLore}} + \lambda x_t\big)

    Args:
      learning_rate: :math:`\alpha_t`, a number >= 0 or a schedule.
      rank: the projection rank, >= 1. Default 128.
      update_proj_gap: steps between projector refreshes, >= 1. Default 200.
      scale: multiplies the projected-back update. Default 1.
      base_optimizer: the optimizer of the projected gradients; None for Adam's scaling.
      weight_decay: :math:`\lambda`, >= 0. Default 0.
      mask: tree of booleans (or a function of the params) selecting the leaves to decay.
      weight_dimension_numbers: see :func:`scale_by_galore`.

    References:
      Zhao et al., `GaLore: Memory-Efficient LLM Training by Gradient Low-Rank Projection
      <https://arxiv.org/abs/2403.03507>`_, ICML 2024.
    """
    check.learning_rate("learning_rate", learning_rate)
    return chain(
        scale_by_galore(rank, update_proj_gap, scale, base_optimizer, weight_dimension_numbers),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
