"""SOAP's per-leaf linear algebra: which axes get a factor, rotations, eigenbases.

Private to :mod:`jopt.contrib._soap`. A leaf of shape ``s`` is seen by its factors in a
*layout*: optionally transposed (``channels_last`` 4-D kernels), optionally reshaped by
soap.py's ``merge_dims`` rule, and preconditioned on the axes whose length is at most
``max_precond_dim``. Every matrix here is float32 (``precision=HIGHEST``) whatever the
leaf's dtype, as in the reference soap.py.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

_HIGHEST = jax.lax.Precision.HIGHEST
FACTOR_DTYPE = jnp.float32
# soap.py adds 1e-30 I before the first eigh, so that a zero factor still has a basis.
_EIGH_JITTER = 1e-30


class Layout(NamedTuple):
    """How one leaf is seen by its factors (static: from the leaf's shape only)."""

    permutation: tuple[int, ...] | None  # (0, 3, 1, 2) for a channels_last 4-D leaf, else None
    shape: tuple[int, ...]  # the shape the factors see (after permuting and merging)
    axes: tuple[int, ...]  # the axes of ``shape`` that carry a factor


def merged_shape(shape: tuple[int, ...], max_precond_dim: int) -> tuple[int, ...]:
    """soap.py's ``merge_dims``: fuse neighbouring axes while their product fits."""
    merged, current = [], 1
    for size in shape:
        if current * size > max_precond_dim:
            if current > 1:
                merged.append(current)
                current = size
            else:
                merged.append(size)
                current = 1
        else:
            current *= size
    if current > 1 or not merged:
        merged.append(current)
    return tuple(merged)


def layout(
    shape: tuple[int, ...],
    max_precond_dim: int,
    merge_dims: bool,
    precondition_1d: bool,
    channels_last: bool,
) -> Layout:
    """The layout of a leaf of ``shape``: which axes carry a factor (soap.py's rules).

    Scalars have none (a 1x1 eigenbasis is +-1: Adam exactly); 1-D leaves have one only
    with ``precondition_1d``; other leaves one per axis of length <= ``max_precond_dim``.
    """
    shape = tuple(shape)
    if len(shape) == 0:
        return Layout(None, shape, ())
    if len(shape) == 1:
        axes = (0,) if precondition_1d and shape[0] <= max_precond_dim else ()
        return Layout(None, shape, axes)
    permutation = None
    if merge_dims and channels_last and len(shape) == 4:
        permutation = (0, 3, 1, 2)
        shape = tuple(shape[i] for i in permutation)
    if merge_dims:
        shape = merged_shape(shape, max_precond_dim)
    axes = tuple(k for k, size in enumerate(shape) if size <= max_precond_dim)
    return Layout(permutation, shape, axes)


def to_layout(x: jax.Array, plan: Layout) -> jax.Array:
    """A leaf (param-shaped) as its factors see it."""
    if plan.permutation is not None:
        x = jnp.transpose(x, plan.permutation)
    return x.reshape(plan.shape)


def from_layout(x: jax.Array, plan: Layout, shape: tuple[int, ...]) -> jax.Array:
    """Undo :func:`to_layout`: back to the param's ``shape``."""
    if plan.permutation is None:
        return x.reshape(shape)
    permuted = tuple(shape[i] for i in plan.permutation)
    inverse = tuple(plan.permutation.index(i) for i in range(len(shape)))
    return jnp.transpose(x.reshape(permuted), inverse)


def factor_sizes(plan: Layout) -> tuple[int, ...]:
    """The side of each factor of a leaf laid out as ``plan``."""
    return tuple(plan.shape[k] for k in plan.axes)


def rotate(x: jax.Array, bases: tuple[jax.Array, ...], axes: tuple[int, ...], back: bool):
    r"""Into the eigenbases (:math:`x \times_k Q_k^\top`), or ``back`` (:math:`\times_k Q_k`)."""
    for q, k in zip(bases, axes, strict=True):
        rotated = jnp.tensordot(x, q.astype(x.dtype), axes=([k], [1 if back else 0]),
                                precision=_HIGHEST)  # fmt: skip
        x = jnp.moveaxis(rotated, -1, k)
    return x


def update_factors(factors, g: jax.Array, axes: tuple[int, ...], beta: jax.Array):
    r""":math:`L_k \leftarrow L_k + (1-\beta)(G_{(k)} G_{(k)}^\top - L_k)` for each factor."""
    g = g.astype(FACTOR_DTYPE)
    new = []
    for factor, k in zip(factors, axes, strict=True):
        others = [i for i in range(g.ndim) if i != k]
        outer = jnp.tensordot(g, g, axes=(others, others), precision=_HIGHEST)
        new.append((factor + (1 - beta) * (outer - factor)).astype(FACTOR_DTYPE))
    return tuple(new)


def eigenbases(factors) -> tuple[jax.Array, ...]:
    """Eigenvectors of each factor (+ 1e-30 I), columns by descending eigenvalue."""
    bases = []
    for factor in factors:
        jittered = factor + _EIGH_JITTER * jnp.eye(factor.shape[0], dtype=FACTOR_DTYPE)
        _, vectors = jnp.linalg.eigh(jittered, symmetrize_input=False)  # lower triangle
        bases.append(vectors[:, ::-1])
    return tuple(bases)


def refresh_bases(factors, bases, nu: jax.Array, axes: tuple[int, ...]):
    r"""One power iteration then QR per factor, columns re-sorted by estimated eigenvalue.

    .. math::  \lambda = \operatorname{diag}(Q^\top L Q), \quad
               Q \leftarrow \operatorname{qr}(L\, Q_{[:, \operatorname{argsort}(-\lambda)]})

    ``nu`` (in the layout) is permuted along each axis the same way.
    """
    new = []
    for factor, q, k in zip(factors, bases, axes, strict=True):
        product = jnp.matmul(factor, q, precision=_HIGHEST)
        estimated = jnp.sum(q * product, axis=0)
        order = jnp.argsort(-estimated, stable=True)
        nu = jnp.take(nu, order, axis=k)
        new.append(jnp.linalg.qr(product[:, order])[0])
    return tuple(new), nu
