"""How Shampoo sees each leaf (small dimensions merged, large ones cut into blocks), and
the statistics, roots and preconditioning of those blocks.

Dimensions are merged left to right while their product stays within
``merge_small_dims_block_size``: ``(3, 4, 512)`` is seen as ``(12, 512)`` for a bound of
1024 and as ``(6144,)`` for 8192. Each dimension longer than ``block_size`` is then cut
into pieces of ``block_size`` (the last one shorter); every block gets one statistic per
dimension. The layout is static (Python ints from the shape), as in precondition-opt.
"""

from __future__ import annotations

import functools
import itertools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jopt.contrib import _matrix_root as roots


def merge_small_dims(shape: tuple[int, ...], max_dim: int) -> tuple[int, ...]:
    """Merge neighbouring dimensions while their product is at most ``max_dim``; drop 1s.

    ``(1, 2, 512, 1, 2048, 1, 3, 4)`` becomes ``(1024, 2048, 12)`` for ``max_dim=1024``;
    a shape of only 1s becomes ``(1,)``; a scalar's ``()`` stays ``()``.
    """
    if shape and all(d == 1 for d in shape):
        return (1,)
    merged: list[int] = []
    product = 1
    for d in shape:
        if product * d <= max_dim:
            product *= d
        else:
            if product > 1:
                merged.append(product)
            product = d
    if product > 1:
        merged.append(product)
    return tuple(merged)


class Blocks(NamedTuple):
    """The static layout of one leaf: its merged shape and the block sizes along each axis."""

    shape: tuple[int, ...]  # the leaf's shape
    merged: tuple[int, ...]  # the shape Shampoo works on
    sizes: tuple[tuple[int, ...], ...]  # block lengths along each merged axis

    @classmethod
    def of(cls, shape: tuple[int, ...], block_size: int, merge_bound: int | None) -> Blocks:
        """The layout of a leaf of ``shape`` (``merge_bound`` None: no merging)."""
        merged = (
            tuple(shape) if merge_bound is None else merge_small_dims(tuple(shape), merge_bound)
        )
        sizes = []
        for d in merged:
            if 0 < block_size < d:
                cuts = (d - 1) // block_size
                sizes.append((block_size,) * cuts + (d - cuts * block_size,))
            else:
                sizes.append((d,))
        return cls(tuple(shape), merged, tuple(sizes))

    def statistic_sizes(self) -> list[int]:
        """The side of each statistic, block by block (row-major), axis by axis."""
        return [d for block in itertools.product(*self.sizes) for d in block]

    def exponent(self) -> int:
        """The root's order ``p``: twice the number of preconditioned axes."""
        return 2 * len(self.merged)

    def split(self, tensor: jax.Array) -> list[jax.Array]:
        """The blocks of ``tensor`` (shaped like the leaf), in row-major block order."""
        pieces = [jnp.reshape(tensor, self.merged)]
        for axis, sizes in enumerate(self.sizes):
            if len(sizes) > 1:
                cuts = list(np.cumsum(sizes)[:-1])
                pieces = [part for piece in pieces for part in jnp.split(piece, cuts, axis=axis)]
        return pieces

    def join(self, pieces: list[jax.Array]) -> jax.Array:
        """The inverse of :meth:`split`: a tensor shaped like the leaf."""
        for axis in reversed(range(len(self.sizes))):
            n = len(self.sizes[axis])
            if n > 1:
                pieces = [
                    jnp.concatenate(pieces[i : i + n], axis=axis) for i in range(0, len(pieces), n)
                ]
        return jnp.reshape(pieces[0], self.shape)


def gram(block: jax.Array, axis: int) -> jax.Array:
    r""":math:`G_{(k)} G_{(k)}^\top`: the block's slices along ``axis`` against each other."""
    others = [i for i in range(block.ndim) if i != axis]
    return jnp.tensordot(block, block, axes=(others, others), precision=jax.lax.Precision.HIGHEST)


def precondition_block(block: jax.Array, roots: list[jax.Array]) -> jax.Array:
    r""":math:`G \times_1 R_1 \times_2 R_2 \cdots`: each axis contracted with its root in turn
    (the contracted axis moves last, so the axes come back in order)."""
    for root in roots:
        block = jnp.tensordot(block, root, axes=[[0], [0]], precision=jax.lax.Precision.HIGHEST)
    return block


def layouts(leaves, block_size, merge_bound, skip_gt, skip_rank_lt) -> list[Blocks | None]:
    """Each leaf's block layout, or None where it is left to the graft (too big, too flat)."""
    shapes = [tuple(np.shape(x)) for x in leaves]
    return [
        None
        if len(s) < skip_rank_lt or any(d > skip_gt for d in s)
        else Blocks.of(s, block_size, merge_bound)
        for s in shapes
    ]


def new_statistics(grads, layouts, statistics, beta2):
    """:math:`L \\leftarrow \\beta_2 L + (1-\\beta_2) G G^\\top` for every block and axis."""
    decay = jnp.where(beta2 == 1.0, 1.0, 1.0 - beta2)
    grams = [
        gram(block, axis)
        for g, layout in zip(grads, layouts, strict=True)
        if layout is not None
        for block in layout.split(g)
        for axis in range(block.ndim)
    ]
    return tuple(beta2 * s + decay * m for s, m in zip(statistics, grams, strict=True))


def all_roots(statistics, exponents, previous, matrix_epsilon, threshold, eigh, relative):
    """Every statistic's inverse root, padded to the largest and batched by exponent (one
    compiled root per exponent); a root whose error is NaN or at least ``threshold`` keeps
    the previous one."""
    longest = max((s.shape[0] for s in statistics), default=1)
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(exponents):
        groups.setdefault(p, []).append(i)
    new = list(previous)
    for p, members in groups.items():
        root_fn = functools.partial(
            roots.inverse_pth_root_eigh if eigh else roots.inverse_pth_root_newton,
            p=p,
            v0=roots.start_vector(longest),
            ridge_epsilon=matrix_epsilon,
            relative=relative,
        )
        sizes = [statistics[i].shape[0] for i in members]
        padded = [
            jnp.pad(statistics[i], [(0, longest - d)] * 2)
            for i, d in zip(members, sizes, strict=True)
        ]
        stacked, errors = jax.vmap(root_fn)(jnp.stack(padded), size=jnp.asarray(sizes))
        for j, (i, d) in enumerate(zip(members, sizes, strict=True)):
            failed = jnp.isnan(errors[j]) | (errors[j] >= threshold)
            new[i] = jnp.where(failed, previous[i], stacked[j, :d, :d])
    return tuple(new)


def preconditioned(g, layout, preconditioners):
    """Every block of ``g`` multiplied by its roots; ``preconditioners`` is consumed in order."""
    blocks = []
    for block in layout.split(g):
        blocks.append(precondition_block(block, [next(preconditioners) for _ in range(block.ndim)]))
    return layout.join(blocks)
