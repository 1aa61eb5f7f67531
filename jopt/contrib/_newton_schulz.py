"""Orthogonalising a matrix (or a batch of them) by Newton-Schulz iterations, for Muon."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

PRECONDITIONINGS = ("frobenius", "spectral", "aol", "schatten")
Preconditioning = Literal["frobenius", "spectral", "aol", "schatten"]


class MuonDimensionNumbers(NamedTuple):
    """Which axes of a weight are its input (reduced) and output axes; the rest are batch.

    Attributes:
      reduction_axis: the input axis or axes (fan-in). Default 0.
      output_axis: the output axis or axes (fan-out). Default 1.
    """

    reduction_axis: Sequence[int] | int = 0
    output_axis: Sequence[int] | int = 1


def is_dimension_numbers(x: Any) -> bool:
    """True for a :class:`MuonDimensionNumbers` (a tree leaf in dimension-number trees)."""
    return isinstance(x, MuonDimensionNumbers)


def _axes(x: jax.Array, dim_nums: MuonDimensionNumbers) -> tuple[tuple[int, ...], tuple[int, ...]]:
    def normal(axes):
        return tuple(a % x.ndim for a in ((axes,) if isinstance(axes, int) else axes))

    return normal(dim_nums.reduction_axis), normal(dim_nums.output_axis)


def fans(x: jax.Array, dim_nums: MuonDimensionNumbers) -> tuple[int, int]:
    """(fan_in, fan_out): the sizes of the reduction and output axes."""
    reduction, output = _axes(x, dim_nums)
    return math.prod(x.shape[a] for a in reduction), math.prod(x.shape[a] for a in output)


def _to_matrices(
    x: jax.Array, dim_nums: MuonDimensionNumbers
) -> tuple[Callable[[jax.Array], jax.Array], Callable[[jax.Array], jax.Array]]:
    """Functions to reshape ``x`` to (batch, fan_in, fan_out) and back."""
    if x.ndim < 2:
        raise ValueError(f"Muon needs parameters of rank >= 2, got shape {x.shape}")
    reduction, output = _axes(x, dim_nums)
    if set(reduction) & set(output):
        raise ValueError(
            f"reduction_axis and output_axis must be disjoint, got {reduction} and {output} "
            f"for shape {x.shape} ({dim_nums})"
        )
    batch = tuple(sorted(set(range(x.ndim)) - set(reduction) - set(output)))
    order = batch + reduction + output
    inverse = tuple(sorted(range(x.ndim), key=lambda i: order[i]))
    sizes = [tuple(x.shape[a] for a in axes) for axes in (batch, reduction, output)]
    flat = tuple(math.prod(s) for s in sizes)
    unflat = sizes[0] + sizes[1] + sizes[2]
    return (
        lambda y: y.transpose(order).reshape(flat),
        lambda y: y.reshape(unflat).transpose(inverse),
    )


def _iteration(x: jax.Array, coeffs: jax.Array) -> jax.Array:
    """One quintic step: :math:`aX + (bA + cA^2)X`, :math:`A = XX^\\top`."""
    a = x @ x.T.conj()
    return coeffs[0] * x + (coeffs[1] * a + coeffs[2] * a @ a) @ x


def _aol_first(x: jax.Array, coeffs: jax.Array, eps: float = 1e-8) -> jax.Array:
    # Almost-orthogonal-layer rescaling, folded into the first iteration's Gram matrix.
    a = x @ x.T.conj()
    s = jnp.expand_dims(jax.lax.rsqrt(jnp.clip(jnp.abs(a).sum(axis=-1), min=eps)), -1)
    x, a = x * s, a * s * s.transpose(-1, -2)
    return coeffs[0] * x + (coeffs[1] * a + coeffs[2] * a @ a) @ x


def _schatten_first(x: jax.Array, coeffs: jax.Array, eps: float = 1e-8) -> jax.Array:
    # Scale by the Schatten-4 norm, read off the first iteration's Gram matrix.
    a = x @ x.T
    s = jnp.expand_dims(
        jax.lax.rsqrt(jnp.clip(jnp.linalg.norm(a, ord="fro", axis=(-2, -1)), min=eps)), (0, -1)
    )
    x, a = x * s, a * s**2
    return coeffs[0] * x + (coeffs[1] * a + coeffs[2] * a @ a) @ x


def _first_step(preconditioning: str):
    first = {"aol": _aol_first, "schatten": _schatten_first}.get(preconditioning)
    if first is None:
        return lambda i, x, c: _iteration(x, c)
    return lambda i, x, c: jax.lax.cond(
        i == 0, lambda y: first(y, c), lambda y: _iteration(y, c), x
    )


def orthogonalize_via_newton_schulz(
    x: jax.Array,
    ns_coeffs: jax.Array,
    ns_steps: int = 5,
    preconditioning: Preconditioning = "frobenius",
    eps: float = 1e-8,
    dimension_numbers: MuonDimensionNumbers | None = None,
) -> jax.Array:
    r"""Approximate the orthogonal factor :math:`UV^\top` of :math:`X = U\Sigma V^\top`.

    .. math::  X_0 = X / (\|X\| + \epsilon), \qquad
               X_{k+1} = a X_k + (b A_k + c A_k^2) X_k, \quad A_k = X_k X_k^\top

    Args:
      x: a matrix, or a tensor with ``dimension_numbers``.
      ns_coeffs: :math:`(a, b, c)`, shape (3,), or one triple per step, shape (n, 3).
      ns_steps: the number of iterations with one triple of coefficients.
      preconditioning: how :math:`X_0` is scaled: ``"frobenius"``, ``"spectral"`` norm,
        or ``"aol"``/``"schatten"`` rescaling inside the first iteration.
      eps: added to the norm, >= 0.
      dimension_numbers: the axes of a tensor ``x`` (None for a matrix).
    """
    if x.ndim != 2 and not is_dimension_numbers(dimension_numbers):
        raise ValueError(
            f"x must be a matrix or come with MuonDimensionNumbers, got shape {x.shape} "
            f"and dimension_numbers={dimension_numbers!r}"
        )
    if x.ndim == 2:
        dimension_numbers = MuonDimensionNumbers(0, 1)
    step = _first_step(preconditioning)

    def orthogonalize(m):
        # Iterate on the wide orientation: the Gram matrix is then the smaller one.
        tall = m.shape[0] > m.shape[1]
        if tall:
            m = m.T
        if preconditioning == "frobenius":
            m = m / (jnp.linalg.norm(m, ord="fro") + eps)
        elif preconditioning == "spectral":
            m = m / (jnp.linalg.norm(m, ord=2) + eps)
        coeffs = ns_coeffs.astype(m.dtype)
        if coeffs.ndim == 1:
            # Unrolled, so that it composes efficiently with vmap.
            m = jax.lax.fori_loop(0, ns_steps, lambda i, y: step(i, y, coeffs), m, unroll=True)
        else:

            def body(carry, c):
                i, y = carry
                return (i + 1, step(i, y, c)), None

            (_, m), _ = jax.lax.scan(body, (jnp.asarray(0, jnp.int32), m), coeffs)
        return m.T if tall else m

    to_matrices, back = _to_matrices(x, dimension_numbers)
    return back(jax.vmap(orthogonalize)(to_matrices(x)))
