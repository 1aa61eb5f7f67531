"""Run a transform on one flat vector instead of a tree of leaves (:func:`flatten`)."""

from __future__ import annotations

import jax.numpy as jnp

from jopt import _check
from jopt._flat._tree import FlatLayout
from jopt.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    with_extra_args_support,
)


def _ravel(layout: FlatLayout, tree):
    buffers = layout.gather(tree)
    return next(iter(buffers.values())) if buffers else jnp.zeros([0], jnp.float32)


def _unravel(layout: FlatLayout, flat):
    return layout.scatter({key: flat for key in set(layout.keys)})


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
        return inner.init(_ravel(FlatLayout.of(params, one_vector=True), params))

    def update(updates, state, params=None, **extra_args):
        layout = FlatLayout.of(updates, one_vector=True)
        flat_params = None if params is None else _ravel(layout, params)
        flat_updates, state = inner.update(
            _ravel(layout, updates), state, flat_params, **extra_args
        )
        return _unravel(layout, flat_updates), state

    return GradientTransformationExtraArgs(init, update)
