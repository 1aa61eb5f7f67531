"""Random trees shaped like a given one (:func:`jopt.tree.random_like` and its helpers)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import jax


def split_key_like(rng_key: jax.Array, target_tree: Any) -> Any:
    """One independent key per leaf of ``target_tree``: ``jax.random.split`` into its structure.

    Args:
      rng_key: the key to split.
      target_tree: the tree whose structure the keys take.
    """
    treedef = jax.tree.structure(target_tree)
    return jax.tree.unflatten(treedef, list(jax.random.split(rng_key, treedef.num_leaves)))


def random_like(
    rng_key: jax.Array,
    target_tree: Any,
    sampler: Callable[..., Any] = jax.random.normal,
    dtype: Any = None,
) -> Any:
    """A tree of ``sampler(key_i, leaf_i.shape, dtype or leaf_i.dtype)``, one key per leaf.

    Each leaf :math:`x_i` is replaced by a draw :math:`z_i \\sim` ``sampler`` of its shape,
    from the keys of :func:`split_key_like` (so the draws equal optax's for the same key).
    A sampler that takes ``out_sharding`` gets the leaf's sharding.

    Args:
      rng_key: the key.
      target_tree: a tree of arrays whose shapes (and dtypes) the draws take.
      sampler: ``sampler(key, shape, dtype)``, default ``jax.random.normal``.
      dtype: the draws' dtype; None uses each leaf's.
    """
    keys = split_key_like(rng_key, target_tree)
    takes_sharding = "out_sharding" in inspect.signature(sampler).parameters

    def draw(leaf, key):
        kind = dtype or leaf.dtype
        if takes_sharding:
            return sampler(key, leaf.shape, kind, out_sharding=jax.typeof(leaf).sharding)
        return sampler(key, leaf.shape, kind)

    return jax.tree.map(draw, target_tree, keys)


def unwrap_random_key_data(input_tree: Any) -> Any:
    """Typed PRNG keys in ``input_tree`` replaced by their raw ``key_data`` (for comparing).

    Args:
      input_tree: a tree of arrays and ``jax.random.key`` objects.
    """

    def unwrap(x):
        is_key = isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
        return jax.random.key_data(x) if is_key else x

    return jax.tree.map(unwrap, input_tree)
