"""optax's older tree namespace, ``optax.tree_utils``: :mod:`jopt.tree` with a ``tree_``
prefix on each name (``tree_add`` is :func:`jopt.tree.add`), so that code written against
``optax.tree_utils`` runs unchanged. New code should use :mod:`jopt.tree`."""

from __future__ import annotations

from jopt import tree as _tree

# The names optax.tree_utils keeps without the prefix.
_UNPREFIXED = ("NamedTupleKey",)
# jopt.tree names that optax.tree_utils also has, as tree_<name>.
_PREFIXED = (
    "add", "add_scale", "allclose", "batch_shape", "bias_correction", "cast", "cast_like",
    "clip", "conj", "div", "dtype", "full_like", "get", "get_all_with_path", "map_params",
    "max", "min", "mul", "norm", "ones_like", "random_like", "real", "scale", "set", "size",
    "split_key_like", "sub", "sum", "unwrap_random_key_data", "update_infinity_moment",
    "update_moment", "update_moment_per_elem_norm", "vdot", "where", "zeros_like",
)  # fmt: skip

globals().update({name: getattr(_tree, name) for name in _UNPREFIXED})
globals().update({f"tree_{name}": getattr(_tree, name) for name in _PREFIXED})

__all__ = [*_UNPREFIXED, *(f"tree_{name}" for name in _PREFIXED)]
