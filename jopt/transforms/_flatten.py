"""Run a transform on one flat vector instead of a tree of leaves (:func:`flatten`)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jopt import _check
from jopt.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    with_extra_args_support,
)


def _ravel(tree):
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.zeros([0], jnp.float32)
    return jnp.concatenate([jnp.reshape(leaf, [-1]) for leaf in leaves])


def _unravel(like, flat):
    leaves, treedef = jax.tree.flatten(like)
    pieces, start = [], 0
    for leaf in leaves:
        size = math.prod(jnp.shape(leaf))
        # Slices of a static offset: concatenation promoted mixed dtypes, so each
        # piece goes back to its own leaf's dtype.
        piece = jax.lax.slice_in_dim(flat, start, start + size)
        pieces.append(jnp.reshape(piece, jnp.shape(leaf)).astype(jnp.result_type(leaf)))
        start += size
    return jax.tree.unflatten(treedef, pieces)


def flatten(inner: GradientTransformation) -> GradientTransformationExtraArgs:
    r"""Give ``inner`` the params and updates as one concatenated vector.

    .. math::  u = \mathrm{unravel}(T(\mathrm{ravel}(g)))

    Many small leaves cost one kernel launch each; one vector costs one. The
    price is a concatenation and a split every step. Mixed-dtype trees are
    concatenated in the promoted dtype and each update returns to its leaf's dtype.

    Args:
      inner: the transform to run on the flat vector.

    Example:
      >>> import jopt
      >>> tx = jopt.flatten(jopt.adam(1e-3))
    """
    _check.transformation("inner", inner)
    inner = with_extra_args_support(inner)

    def init(params):
        return inner.init(_ravel(params))

    def update(updates, state, params=None, **extra_args):
        flat_params = None if params is None else _ravel(params)
        flat_updates, state = inner.update(_ravel(updates), state, flat_params, **extra_args)
        return _unravel(updates, flat_updates), state

    return GradientTransformationExtraArgs(init, update)
