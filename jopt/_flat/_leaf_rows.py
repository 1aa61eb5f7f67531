"""Per-leaf reductions on the buffers of a :class:`~jopt.FlatTree`, as blocks of rows.

A transform that reduces over each leaf (a trust ratio, a block RMS, NovoGrad's
per-layer second moment) cannot reduce a flat buffer as a whole. :class:`FlatLayout`
packs leaves of equal size next to each other, so each buffer is a few blocks of
equal-size leaves: reshaped to ``(leaves, size)``, a block reduces each leaf along its
last axis (``axis=-1, keepdims=True``) and broadcasts the result back along its rows,
in the same fused kernels as an elementwise pass. On this kind of machine (CPU) that
costs about what an elementwise pass does, where ``jax.ops.segment_sum`` over a static
segment-id vector costs ~3.6x and a cumsum ~16x; a tree whose leaves all differ in
size gets one block per leaf, which is no worse than running leaf by leaf.

Per-leaf values (one number per leaf, e.g. NovoGrad's ``nu``) are kept as a dict
``{buffer key: (leaves,) array}`` in buffer order, and handed to the row function as
``(leaves, 1)`` columns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jopt._flat._tree import FlatTree


def _blocks(arg: Any, key: str, runs) -> list[jax.Array]:
    """``arg``'s part of buffer ``key`` as one ``(leaves, size)`` or ``(leaves, 1)`` block a run."""
    value = arg.buffers[key] if isinstance(arg, FlatTree) else arg[key]
    flat = jnp.reshape(value, (-1,))
    per_leaf = not isinstance(arg, FlatTree)
    blocks, start = [], 0
    for offset, leaves, size in runs:
        if per_leaf:
            blocks.append(flat[start : start + leaves].reshape(leaves, 1))
            start += leaves
        else:
            blocks.append(flat[offset : offset + leaves * size].reshape(leaves, size))
    return blocks


def _join(pieces: list[jax.Array]) -> jax.Array:
    pieces = [jnp.reshape(p, (-1,)) for p in pieces]
    return pieces[0] if len(pieces) == 1 else jnp.concatenate(pieces)


def map_leaf_rows(f: Callable[..., jax.Array], *args: Any, per_leaf: bool = False) -> Any:
    """Apply ``f`` to every block of equal-size leaves of the FlatTrees among ``args``.

    Args:
      f: takes one block per argument, ``(leaves, size)`` for a FlatTree and
        ``(leaves, 1)`` for per-leaf values, and returns a ``(leaves, size)`` block (or,
        with ``per_leaf``, a ``(leaves, 1)`` column). Reductions over a leaf are over
        ``axis=-1`` with ``keepdims=True``.
      *args: FlatTrees of one layout (the first is one) and per-leaf value dicts.
      per_leaf: whether ``f`` returns one value per leaf.

    Returns:
      A FlatTree like ``args[0]`` or, with ``per_leaf``, a per-leaf value dict.
    """
    first = args[0]
    layout = first.layout
    out = {}
    for key, buffer in first.buffers.items():
        runs = layout.runs(key)
        blocks = [_blocks(arg, key, runs) for arg in args]
        joined = _join([f(*parts) for parts in zip(*blocks, strict=True)])
        out[key] = joined if per_leaf else joined.reshape(jnp.shape(buffer))
    return out if per_leaf else FlatTree(out, layout)


def per_leaf_zeros(flat: FlatTree, dtype: Any = None) -> dict[str, jax.Array]:
    """One zero per leaf of ``flat``, in each buffer's dtype (or ``dtype``)."""
    return {
        key: jnp.zeros(sum(n for _, n, _ in flat.layout.runs(key)), dtype or buffer.dtype)
        for key, buffer in flat.buffers.items()
    }


def row_sum(x: jax.Array) -> jax.Array:
    """Each row's sum, as a ``(rows, 1)`` column."""
    return jnp.sum(x, axis=-1, keepdims=True)


def row_norm(x: jax.Array) -> jax.Array:
    """Each row's Euclidean norm, as a column."""
    return jnp.sqrt(row_sum(jnp.real(jnp.conj(x) * x)))


def row_rms(x: jax.Array) -> jax.Array:
    """Each row's root mean square, as a column."""
    return jnp.sqrt(jnp.mean(jnp.real(jnp.conj(x) * x), axis=-1, keepdims=True))


def floored_row_norm(x: jax.Array, floor: Any, mean: bool = False) -> jax.Array:
    """``max(norm(row), floor)`` (the RMS with ``mean``) of each row, as a column, in one pass.

    Its gradient is 0, not NaN, where the floor wins: the square root only ever sees the
    sum of squares where that exceeds ``floor**2`` (ones elsewhere). The leaf-by-leaf
    path gets this from a second reduction of a masked copy; here that would be a
    second pass over the buffer.
    """
    squares = jnp.real(jnp.conj(x) * x)
    total = jnp.mean(squares, -1, keepdims=True) if mean else row_sum(squares)
    wins = total <= jnp.square(floor)
    return jnp.where(wins, floor, jnp.sqrt(jnp.where(wins, jnp.ones_like(total), total)))
