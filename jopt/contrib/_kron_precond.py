r"""The Kronecker-factored preconditioner of PSGD Kron, one leaf at a time.

A leaf :math:`G` of shape :math:`(d_1, \dots, d_n)` has one factor :math:`Q_k` per axis:
an upper-triangular :math:`d_k \times d_k` matrix, or a :math:`d_k`-vector standing for a
diagonal matrix (a scalar leaf has one 0-d factor). The preconditioner is
:math:`P = \bigotimes_k Q_k^\top Q_k`; :math:`G \times_k M` below contracts axis ``k`` of
:math:`G` with the columns of :math:`M` (the mode-``k`` product).

The functions here are pure, shape-static and work on one unstacked leaf; the transform
(:mod:`jopt.contrib._kron`) maps them over the leaves (and over the leading axis of
scanned layers). All the maths runs in the dtype of the arrays it is given (the transform
passes float32 or higher).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

Factors = tuple[jax.Array, ...]


def triangular_axes(
    shape: Sequence[int], max_size: int, min_ndim: int, memory_save_mode: str | None
) -> tuple[bool, ...]:
    """Which axes of a leaf of ``shape`` get a triangular factor (the others a diagonal).

    An axis is diagonal when its size is 1 or above ``max_size``, when the leaf has fewer
    than ``min_ndim`` axes, or when ``memory_save_mode`` makes it so: ``"all_diag"`` every
    axis, ``"one_diag"`` the largest axis (the last of the largest on a tie).
    """
    ndim = len(shape)
    forced = [memory_save_mode == "all_diag"] * ndim
    if memory_save_mode == "one_diag" and ndim:
        forced[max(range(ndim), key=lambda i: (shape[i], i))] = True
    return tuple(
        not (size == 1 or size > max_size or ndim < min_ndim or diag)
        for size, diag in zip(shape, forced, strict=True)
    )


def init_factors(
    shape: Sequence[int], triangular: Sequence[bool], scale: jax.Array, dtype: jnp.dtype
) -> Factors:
    r"""Factors whose Kronecker product is :math:`s I`: each :math:`s^{1/n} I` (``scale`` = s)."""
    if not shape:
        return (jnp.asarray(scale, dtype),)
    per_axis = jnp.asarray(scale, dtype) ** (1.0 / len(shape))
    return tuple(
        per_axis * (jnp.eye(size, dtype=dtype) if tri else jnp.ones(size, dtype))
        for size, tri in zip(shape, triangular, strict=True)
    )


def _along(x: jax.Array, factor: jax.Array, axis: int) -> jax.Array:
    """:math:`x \\times_k F`: ``factor`` (a matrix, or a vector as a diagonal) on ``axis``."""
    if factor.ndim < 2:
        return x * _on_axis(factor, x.ndim, axis)
    return jnp.moveaxis(jnp.tensordot(factor, x, axes=((1,), (axis,))), 0, axis)


def _on_axis(vector: jax.Array, ndim: int, axis: int) -> jax.Array:
    """A vector shaped to broadcast along ``axis`` of an ``ndim``-array (a 0-d one as is)."""
    if vector.ndim == 0:
        return vector
    return vector.reshape([-1 if i == axis else 1 for i in range(ndim)])


def _gram(x: jax.Array, axis: int, triangular: bool) -> jax.Array:
    """:math:`X_{(k)} X_{(k)}^\\top` over every other axis (its diagonal when not triangular)."""
    others = [i for i in range(x.ndim) if i != axis]
    if triangular:
        return jnp.tensordot(x, x, axes=(others, others))
    return jnp.sum(x * x, axis=tuple(others)) if others else x * x


def whiten(factors: Factors, probe: jax.Array) -> jax.Array:
    r""":math:`B = V \times_1 Q_1^{-\top} \cdots \times_n Q_n^{-\top}` by triangular solves."""
    out = probe
    for axis, q in enumerate(factors):
        if q.ndim < 2:
            out = out / _on_axis(q, out.ndim, axis)
            continue
        moved = jnp.moveaxis(out, axis, -1)
        flat = moved.reshape(-1, moved.shape[-1])
        # flat @ inv(q): q is upper triangular, solved from the right.
        solved = jax.lax.linalg.triangular_solve(q, flat, left_side=False, lower=False)
        out = jnp.moveaxis(solved.reshape(moved.shape), -1, axis)
    return out


def norm_lower_bound(b: jax.Array) -> jax.Array:
    r"""A cheap lower bound of the spectral norm of a symmetric matrix :math:`B`.

    With :math:`v` the row of :math:`B` of largest norm and :math:`x = Bv/\|Bv\|`, returns
    :math:`\|Bx\| \le \|B\|_2` (within a factor :math:`\sqrt 2` in practice; Li, 2018).
    """
    top = jnp.max(jnp.abs(b))
    # Guarded divisions instead of a lax.cond: a zero matrix gives 0, and one branch
    # less to compile per factor.
    b = b / jnp.where(top > 0, top, 1)
    row = jnp.argmax(jnp.sum(b * b, axis=1))
    x = b @ jax.lax.dynamic_index_in_dim(b, row, 0, keepdims=False)
    length = jnp.linalg.norm(x)
    return top * jnp.linalg.norm(b @ (x / jnp.where(length > 0, length, 1)))


def _tiny(x: jax.Array) -> jax.Array:
    return x + jnp.finfo(x.dtype).tiny


def update_factors(
    factors: Factors, grad: jax.Array, whitened: jax.Array, lr: jax.Array
) -> Factors:
    r"""One step of the Lie-group fit of every :math:`Q_k` (all from the same old factors).

    With :math:`A = G \times_k Q_k` (all axes) and :math:`B` from :func:`whiten`:

    .. math::

        Q_k \leftarrow Q_k - \frac{\eta}{\|A_{(k)}A_{(k)}^\top + B_{(k)}B_{(k)}^\top\|}
            \operatorname{triu}\big(A_{(k)}A_{(k)}^\top - B_{(k)}B_{(k)}^\top\big) Q_k

    where the norm is :func:`norm_lower_bound` (the largest entry for a diagonal factor,
    whose step is elementwise and not triangular-projected).
    """
    a = grad
    for axis, q in enumerate(factors):
        a = _along(a, q, axis)
    new = []
    for axis, q in enumerate(factors):
        triangular = q.ndim >= 2
        term_a, term_b = _gram(a, axis, triangular), _gram(whitened, axis, triangular)
        step = lr * (term_a - term_b)
        if triangular:
            new.append(q - (jnp.triu(step) / _tiny(norm_lower_bound(term_a + term_b))) @ q)
        else:
            new.append(q - step * q / _tiny(jnp.max(jnp.abs(term_a + term_b))))
    return tuple(new)


def precondition(factors: Factors, grad: jax.Array) -> jax.Array:
    r""":math:`P\,G = G \times_1 Q_1^\top Q_1 \cdots \times_n Q_n^\top Q_n`."""
    out = grad
    for axis, q in enumerate(factors):
        out = _along(_along(out, q, axis), q.T if q.ndim >= 2 else q, axis)
    return out


def balance(factors: Factors) -> Factors:
    """Rescale the factors to equal largest entries, keeping their Kronecker product."""
    if len(factors) < 2:
        return factors
    tops = jnp.stack([jnp.max(jnp.abs(q)).astype(jnp.float32) for q in factors])
    target = jnp.prod(tops) ** (1.0 / len(factors))
    return tuple(q * (target / top).astype(q.dtype) for q, top in zip(factors, tops, strict=True))
