"""Matrix routines some optimizers build on: power iteration, inverse p-th roots, NNLS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from jopt import _check, tree


def _normalized(v: Any) -> Any:
    return tree.scale(1.0 / tree.l2_norm(v), v)


def power_iteration(
    matrix: jax.Array | Callable[[Any], Any],
    *,
    v0: Any = None,
    num_iters: int = 100,
    error_tolerance: float = 1e-6,
    precision: lax.Precision = lax.Precision.HIGHEST,
    key: jax.Array | None = None,
) -> tuple[jax.Array, Any]:
    r"""Dominant eigenvalue and eigenvector of a matrix (or matrix-vector product).

    .. math::  v_{k+1} = \frac{A v_k}{\lVert A v_k \rVert}, \qquad
               \lambda_k = \langle v_k, A v_k \rangle

    Iterates until :math:`|\lVert A v - \lambda v \rVert / \lambda| <` ``error_tolerance`` or
    ``num_iters`` steps.

    Args:
      matrix: a square array, or a callable ``v -> A v`` on pytrees.
      v0: starting vector (required for a callable; default uniform in [-1, 1]).
      num_iters: maximum iterations.
      error_tolerance: relative residual at which to stop.
      precision: precision of the matrix products.
      key: PRNG key of the default ``v0`` (default ``jax.random.PRNGKey(0)``).

    Returns:
      ``(eigenvalue, eigenvector)``.

    References:
      Golub & Van Loan, *Matrix Computations*, section 7.3.1.
    """
    if callable(matrix):
        product = matrix
        if v0 is None:
            raise ValueError(
                "v0 must be given when matrix is a callable; pass a pytree like its input"
            )
    else:
        product = lambda v: jnp.matmul(matrix, v, precision=precision)  # noqa: E731
        if v0 is None:
            key = jax.random.PRNGKey(0) if key is None else key
            v0 = jax.random.uniform(key, matrix.shape[-1:], matrix.dtype, -1.0, 1.0)
    v0 = _normalized(v0)

    def keep_going(loop):
        vector, image, value, i = loop
        residual = tree.l2_norm(tree.sub(image, tree.scale(value, vector)))
        return ~(jnp.abs(residual / value) < error_tolerance) & (i < num_iters)

    def step(loop):
        _, image, _, i = loop
        vector = _normalized(image)
        image = product(vector)
        return vector, image, tree.vdot(vector, image), i + 1

    _, image, value, _ = lax.while_loop(
        keep_going, step, (v0, product(v0), jnp.asarray(0.0), jnp.asarray(0))
    )
    return value, _normalized(image)


def matrix_inverse_pth_root(
    matrix: jax.Array,
    p: int,
    num_iters: int = 100,
    ridge_epsilon: float = 1e-6,
    error_tolerance: float = 1e-6,
    precision: lax.Precision = lax.Precision.HIGHEST,
) -> tuple[jax.Array, jax.Array]:
    r""":math:`A^{-1/p}` of a symmetric PSD matrix by coupled Newton iterations (as in Shampoo).

    With :math:`\alpha = -1/p`, :math:`M_0 = z A`, :math:`H_0 = z^{1/p} I`,
    :math:`z = (1+p) / (2\lVert A\rVert_F)`:

    .. math::  T_k = (1-\alpha) I + \alpha M_k, \quad M_{k+1} = T_k^p M_k, \quad H_{k+1} = H_k T_k

    until :math:`\max|M_k - I| <` ``error_tolerance``; :math:`H_k \to A^{-1/p}`. A ridge
    ``ridge_epsilon`` times the largest eigenvalue is added first.

    Args:
      matrix: symmetric positive semi-definite ``(n, n)`` matrix.
      p: the root, one of 1, 2, 4, 8.
      num_iters: maximum iterations.
      ridge_epsilon: relative ridge, >= 0.
      error_tolerance: stop when the error falls below it.
      precision: precision of the matrix products.

    Returns:
      ``(matrix ** (-1/p), error)``.

    References:
      Higham, *Functions of Matrices*, eq. 7.18 (2008); Gupta et al., *Shampoo* (2018).
    """
    _check.one_of("p", p, (1, 2, 4, 8))
    _check.non_negative("ridge_epsilon", ridge_epsilon)
    size = matrix.shape[0]
    alpha = jnp.asarray(-1.0 / p, jnp.float32)
    identity = jnp.eye(size, dtype=jnp.float32)
    largest, _ = power_iteration(matrix, num_iters=100, error_tolerance=1e-6, precision=precision)
    ridge = ridge_epsilon * jnp.maximum(largest, 1e-16)
    if size == 1:
        return (matrix + ridge) ** alpha, jnp.asarray(0.0)

    def power(m):
        for _ in range({1: 0, 2: 1, 4: 2, 8: 3}[p]):
            m = jnp.matmul(m, m, precision=precision)
        return m

    def keep_going(loop):
        i, _, _, _, error, improving = loop
        return (i < num_iters) & (error > error_tolerance) & improving

    def step(loop):
        i, m, h, _, error, _ = loop
        t = (1 - alpha) * identity + alpha * m
        new_m = jnp.matmul(power(t), m, precision=precision)
        new_error = jnp.max(jnp.abs(new_m - identity))
        # The error may rise briefly before converging; allow 20% before giving up.
        return (
            i + 1,
            new_m,
            jnp.matmul(h, t, precision=precision),
            h,
            new_error,
            new_error < error * 1.2,
        )

    damped = matrix + ridge * identity
    z = (1 + p) / (2 * jnp.linalg.norm(damped))
    m0 = damped * z
    h0 = identity * jnp.power(z, 1.0 / p)
    _, m, h, previous_h, _, converged = lax.while_loop(
        keep_going, step, (0, m0, h0, h0, jnp.max(jnp.abs(m0 - identity)), True)
    )
    converged = jnp.asarray(converged, previous_h.dtype)
    root = converged * h + (1 - converged) * previous_h
    return jnp.asarray(root, matrix.dtype), jnp.max(jnp.abs(m - identity))


def nnls(
    A: jax.Array,  # noqa: N803 - the matrix of the problem's usual notation
    b: jax.Array,
    iters: int,
    unroll: int | bool = 1,
    L: Any = None,  # noqa: N803
) -> jax.Array:
    r"""Non-negative least squares :math:`\min_{x \ge 0} \lVert A x - b \rVert_2`.

    Fast projected gradient with Nesterov momentum on :math:`Q = A^\top A`, :math:`q = A^\top b`:

    .. math::  x_{k+1} = \max(p_k - (Q p_k - q)/L,\ 0), \quad
               p_{k+1} = x_{k+1} + \tfrac{c_k - 1}{c_{k+1}}(x_{k+1} - x_k), \quad
               c_{k+1} = \tfrac{1 + \sqrt{1 + 4 c_k^2}}{2}

    Args:
      A: ``(M, N)`` matrix.
      b: ``(M,)`` vector or ``(M, K)`` matrix.
      iters: number of iterations, >= 0.
      unroll: ``lax.scan``'s unroll.
      L: upper bound on the spectral radius of :math:`A^\top A` (default: min of its
        Frobenius and 1-norms).

    References:
      Polyak, *Projected gradient method for non-negative least square* (2015).
    """
    if A.ndim != 2:
        raise ValueError(f"A must be a matrix, got shape {A.shape}")
    if b.ndim not in (1, 2) or b.shape[0] != A.shape[0]:
        raise ValueError(f"b must have {A.shape[0]} rows like A, got shape {b.shape}")
    _check.integer("iters", iters, minimum=0)
    gram, target = A.mT @ A, A.mT @ b
    if L is None:
        frobenius = jnp.linalg.matrix_norm(gram, ord="fro")
        L = jnp.minimum(frobenius, jnp.linalg.matrix_norm(gram, ord=1)) if gram.size else 0.0  # noqa: N806
    L = jnp.where(L == 0, 1, L)  # noqa: N806 - an all-zero A: any step size works

    def step(loop, _):
        x, p, c = loop
        c_next = (1 + jnp.sqrt(1 + 4 * c**2)) / 2
        x_next = jnp.clip(p - (gram @ p - target) / L, 0)
        return (x_next, x_next + (c - 1) / c_next * (x_next - x), c_next), None

    x0 = jnp.zeros(A.shape[-1:] + b.shape[1:], b.dtype)
    (x, _, _), _ = lax.scan(step, (x0, x0, 0.0), length=iters, unroll=unroll)
    return x
