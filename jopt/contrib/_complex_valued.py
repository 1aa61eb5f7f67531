"""Run a real-valued optimizer on complex parameters, as pairs of real and imaginary parts."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt.base import GradientTransformation, OptState


class SplitRealAndImaginaryArrays(NamedTuple):
    """A complex array seen as its real and imaginary parts (two real leaves)."""

    real: jax.Array
    imaginary: jax.Array


def _split(x: Any) -> Any:
    return SplitRealAndImaginaryArrays(x.real, x.imag) if jnp.iscomplexobj(x) else x


def _merge(x: Any) -> Any:
    return x.real + x.imaginary * 1j if isinstance(x, SplitRealAndImaginaryArrays) else x


class SplitRealAndImaginaryState(NamedTuple):
    """State of :func:`split_real_and_imaginary`."""

    inner_state: OptState  # the inner transform's state, over the split (real) params


def split_real_and_imaginary(inner: GradientTransformation) -> GradientTransformation:
    r"""Apply ``inner`` to the real and imaginary parts of complex leaves separately.

    .. math::  z = x + iy \;\mapsto\; (x, y), \qquad u_z = u_x + i\,u_y

    Real leaves pass through unchanged. Adam on the split is not Adam on :math:`z`: the
    second moment is kept per part instead of on :math:`|g|^2`.

    Args:
      inner: the transform to run on the real-valued pytree.
    """
    check.transformation("inner", inner)

    def init(params):
        return SplitRealAndImaginaryState(inner.init(jax.tree.map(_split, params)))

    def update(updates, state, params=None):
        updates, inner_state = inner.update(
            jax.tree.map(_split, updates), state.inner_state, jax.tree.map(_split, params)
        )
        merged = jax.tree.map(
            _merge, updates, is_leaf=lambda x: isinstance(x, SplitRealAndImaginaryArrays)
        )
        return merged, SplitRealAndImaginaryState(inner_state)

    return GradientTransformation(init, update)
