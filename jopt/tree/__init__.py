"""Pytree arithmetic and numerics shared by every transform (optax's ``optax.tree``).

The layer just above ``jopt.base``: ``_arithmetic`` (elementwise maps, norms, moments,
casts), ``_lookup`` (reading and editing a state by field name), ``_state_mapping``
(mapping over a state's copies of the params), ``_random`` (random trees), and the
numerics transforms build on (``_numerics``: safe norms; ``_linear_algebra``: power
iteration, matrix roots, NNLS).
"""

from __future__ import annotations

from jopt.tree._arithmetic import (  # noqa: A004
    abs_sq,
    add,
    add_scale,
    all_finite,
    allclose,
    batch_shape,
    bias_correction,
    bytes_size,
    cast,
    cast_like,
    clip,
    conj,
    div,
    dtype,
    full_like,
    l1_norm,
    l2_norm,
    linf_norm,
    max,
    min,
    mul,
    norm,
    ones_like,
    real,
    safe_increment,
    scale,
    size,
    sub,
    sum,
    update_infinity_moment,
    update_moment,
    update_moment_per_elem_norm,
    vdot,
    where,
    zeros_like,
)
from jopt.tree._lookup import NamedTupleKey, get, get_all_with_path, set  # noqa: A004
from jopt.tree._random import random_like, split_key_like, unwrap_random_key_data
from jopt.tree._state_mapping import tree_map_params as map_params

__all__ = [
    "add", "add_scale", "all_finite", "bias_correction", "bytes_size", "cast", "cast_like", "clip",
    "dtype", "full_like", "l1_norm", "l2_norm", "linf_norm", "max", "min", "mul", "div",
    "norm", "ones_like", "safe_increment", "scale", "size", "sub", "sum",
    "update_infinity_moment", "update_moment", "update_moment_per_elem_norm", "vdot",
    "where", "zeros_like",
    # complex numbers, comparison, batching
    "abs_sq", "allclose", "batch_shape", "conj", "real",
    # reading and editing a state by field name; mapping over its copies of the params
    "NamedTupleKey", "get", "get_all_with_path", "map_params", "set",
    # random trees
    "random_like", "split_key_like", "unwrap_random_key_data",
]  # fmt: skip
