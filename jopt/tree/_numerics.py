"""Numerically safe scalar helpers whose gradients stay finite at their clipping points."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jopt.base import ArrayTree
from jopt.tree import abs_sq, safe_increment


def safe_norm(
    x: jax.Array,
    min_norm: Any,
    ord: int | float | str | None = None,  # noqa: A002 - numpy's name
    axis: int | tuple[int, ...] | None = None,
    keepdims: bool = False,
) -> jax.Array:
    """``max(norm(x), min_norm)`` with a zero (not NaN) gradient where the norm is clipped.

    ``jnp.maximum(jnp.linalg.norm(x), m)`` has a NaN gradient at ``x = 0``, because the
    norm's derivative is evaluated there even though its branch is not taken; the
    clipped entries are replaced by ones before the norm so that it never is.
    """
    norm = jnp.linalg.norm(x, ord=ord, axis=axis, keepdims=True)
    clipped = norm <= min_norm
    safe_x = jnp.where(clipped, jnp.ones_like(x), x)
    norm = norm if keepdims else jnp.squeeze(norm, axis=axis)
    clipped = clipped if keepdims else jnp.squeeze(clipped, axis=axis)
    return jnp.where(
        clipped, min_norm, jnp.linalg.norm(safe_x, ord=ord, axis=axis, keepdims=keepdims)
    )


def safe_root_mean_squares(x: jax.Array, min_rms: Any) -> jax.Array:
    """``max(sqrt(mean(|x|^2)), min_rms)`` with a finite gradient where it is clipped."""
    rms = jnp.sqrt(jnp.mean(abs_sq(x)))
    safe_x = jnp.where(rms <= min_rms, jnp.ones_like(x), x)
    return jnp.where(rms <= min_rms, min_rms, jnp.sqrt(jnp.mean(abs_sq(safe_x))))


@jax.custom_vjp
def _scaled_identity(inputs: ArrayTree, scale: Any) -> ArrayTree:
    del scale
    return inputs


def _scaled_identity_fwd(inputs, scale):
    return inputs, scale


def _scaled_identity_bwd(scale, cotangent):
    return jax.tree.map(lambda g: g * scale, cotangent), None


_scaled_identity.defvjp(_scaled_identity_fwd, _scaled_identity_bwd)


def scale_gradient(inputs: ArrayTree, scale: Any) -> ArrayTree:
    """Identity on the forward pass; multiplies the gradient by ``scale`` on the backward pass."""
    if isinstance(scale, (int, float)) and scale == 1.0:
        return inputs
    if isinstance(scale, (int, float)) and scale == 0.0:
        return jax.lax.stop_gradient(inputs)
    return _scaled_identity(inputs, scale)


def safe_int32_increment(count: jax.Array) -> jax.Array:
    """Alias of :func:`jopt.tree.safe_increment` under optax's older name."""
    return safe_increment(count)
