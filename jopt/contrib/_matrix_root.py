r"""Inverse p-th roots of symmetric PSD matrices for Shampoo, in float32, as precondition-opt.

Two methods, each returning ``(root, error)``; the caller keeps the previous root where the
error is NaN or too large:

- coupled Newton iterations (Higham, *Functions of Matrices*, eq. 7.18), retried with a
  ten-times larger ridge (up to 6 tries) while the residual stays above 0.05;
- an eigendecomposition (``eigh``), whose error is the off-diagonal residual of
  :math:`U^\top (A + \epsilon I) U`.

Each takes a matrix padded with zeros beyond ``size`` (the roots of a tree's statistics
are computed in one batch, padded to the largest, as precondition-opt does) and returns
the root padded the same way. Both add a ridge :math:`\epsilon\,\lambda_{\max}(A)` first
(``relative=True``), with :math:`\lambda_{\max}` from a power iteration started at a fixed
vector.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

_HIGHEST = lax.Precision.HIGHEST
_TINY = 1e-25  # floor of the largest eigenvalue (precondition-opt's _EPSILON)
_MAX_ERROR_RATIO = 1.2  # Newton's residual may grow this much in one step and recover
_RETRY_ERROR = 0.05  # a Newton run ending above this residual is retried with more ridge
_TRIES = 6


def start_vector(size: int) -> jax.Array:
    """The power iteration's start: precondition-opt's fixed uniform draw (seed 1729)."""
    return jnp.asarray(np.random.RandomState(1729).uniform(-1.0, 1.0, size).astype(np.float32))


def largest_eigenvalue(matrix: jax.Array, v0: jax.Array, tolerance: float = 1e-6) -> jax.Array:
    r"""Rayleigh quotient :math:`v^\top A v` of a power iteration, stopped when it changes by
    less than ``tolerance`` (or after 100 steps)."""

    def keep_going(loop):
        i, _, _, moving = loop
        return (i < 100) & moving

    def step(loop):
        i, v, value, _ = loop
        v = v / jnp.linalg.norm(v)
        image = jnp.matmul(matrix, v, precision=_HIGHEST)
        new_value = jnp.dot(v, image, precision=_HIGHEST)
        return i + 1, image, new_value, jnp.abs(new_value - value) > tolerance

    _, _, value, _ = lax.while_loop(keep_going, step, (0, v0, jnp.zeros((), matrix.dtype), True))
    return value


def _masked(matrix: jax.Array, size: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The float32 matrix with its padding (rows and columns from ``size`` on) zeroed, and
    the identity with the same padding."""
    matrix = matrix.astype(jnp.float32)
    keep = (jnp.arange(matrix.shape[0]) < size).astype(jnp.float32)
    return matrix * keep[:, None] * keep[None, :], jnp.diag(keep)


def _matrix_power(matrix: jax.Array, p: int) -> jax.Array:
    """``matrix ** p`` by repeated squaring (the reference's product order)."""
    result = None
    while p > 0:
        if p % 2 == 1:
            result = matrix if result is None else jnp.matmul(matrix, result, precision=_HIGHEST)
        p //= 2
        if p:
            matrix = jnp.matmul(matrix, matrix, precision=_HIGHEST)
    return result


def _newton(damped: jax.Array, identity: jax.Array, p: int, num_iters: int, tolerance: float):
    """One coupled Newton run on ``damped``: ``(root, residual)``."""
    alpha = -1.0 / p

    def keep_going(loop):
        i, _, _, _, error, ratio = loop
        return (i < num_iters) & (error > tolerance) & (ratio < _MAX_ERROR_RATIO)

    def step(loop):
        i, m, h, _, error, _ = loop
        t = (1 - alpha) * identity + alpha * m
        new_m = jnp.matmul(_matrix_power(t, p), m, precision=_HIGHEST)
        new_error = jnp.max(jnp.abs(new_m - identity))
        return i + 1, new_m, jnp.matmul(h, t, precision=_HIGHEST), h, new_error, new_error / error

    z = (1 + p) / (2 * jnp.linalg.norm(damped))
    m0 = damped * z
    h0 = identity * jnp.power(z, 1.0 / p)
    start = (0, m0, h0, h0, jnp.max(jnp.abs(m0 - identity)), jnp.ones((), damped.dtype))
    _, m, h, previous_h, _, ratio = lax.while_loop(keep_going, step, start)
    root = jnp.where(ratio < _MAX_ERROR_RATIO, h, previous_h)  # the last step diverged: undo it
    return root, jnp.max(jnp.abs(m - identity))


def inverse_pth_root_newton(
    matrix: jax.Array,
    p: int,
    size: jax.Array,
    v0: jax.Array,
    ridge_epsilon: float,
    relative: bool = True,
    num_iters: int = 100,
    tolerance: float = 1e-6,
) -> tuple[jax.Array, jax.Array]:
    r""":math:`(A + \epsilon I)^{-1/p}` by coupled Newton iterations, and the final residual
    :math:`\max|M - I|`.

    With :math:`\alpha = -1/p`, :math:`z = (1+p)/(2\lVert A_\epsilon\rVert_F)`,
    :math:`M_0 = z A_\epsilon`, :math:`H_0 = z^{1/p} I`:
    :math:`T_k = (1-\alpha)I + \alpha M_k`, :math:`M_{k+1} = T_k^p M_k`,
    :math:`H_{k+1} = H_k T_k \to A_\epsilon^{-1/p}`.
    """
    matrix, identity = _masked(matrix, size)
    top = largest_eigenvalue(matrix, v0 * identity.diagonal()) if relative else 1.0
    ridge = ridge_epsilon * jnp.maximum(top, _TINY)

    def keep_trying(loop):
        i, _, _, failed = loop
        return failed & (i < _TRIES)

    def attempt(loop):
        i = loop[0]
        damped = matrix + ridge * (10.0**i) * identity
        root, error = _newton(damped, identity, p, num_iters, tolerance)
        return i + 1, root, error, error > _RETRY_ERROR

    start = (0, identity, jnp.asarray(1000.0, jnp.float32), True)
    _, root, error, _ = lax.while_loop(keep_trying, attempt, start)
    return root, error


def inverse_pth_root_eigh(
    matrix: jax.Array,
    p: int,
    size: jax.Array,
    v0: jax.Array,
    ridge_epsilon: float,
    relative: bool = True,
    tolerance: float = 1e-6,
) -> tuple[jax.Array, jax.Array]:
    r""":math:`(A + \epsilon I)^{-1/p} = U \operatorname{diag}(\max(e, \epsilon)^{-1/p}) U^\top`
    from :math:`A + \epsilon I = U \operatorname{diag}(e) U^\top`, and the residual
    :math:`\max|U^\top (A + \epsilon I) U - \operatorname{diag}(e)|`."""
    matrix, identity = _masked(matrix, size)
    top = largest_eigenvalue(matrix, v0 * identity.diagonal(), tolerance) if relative else 1.0
    ridge = ridge_epsilon * jnp.maximum(top, tolerance)
    regularized = matrix + ridge * identity
    e, u = jnp.linalg.eigh(regularized)
    real = jnp.flip(identity.diagonal())  # the padding's eigenvalues are the lowest (zeros)
    e = e * real
    inverse = jnp.where(e == 0.0, 0.0, jnp.power(jnp.maximum(e, ridge), -1.0 / p))
    half = u * jnp.sqrt(inverse)
    root = jnp.matmul(half, half.T, precision=_HIGHEST)
    recovered = jnp.matmul(u.T, jnp.matmul(regularized, u, precision=_HIGHEST), precision=_HIGHEST)
    return root, jnp.max(jnp.abs((recovered - jnp.diag(e)) * real))
