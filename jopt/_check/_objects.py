"""Checks of objects, not numbers: masks, PRNG keys, dimension numbers, dtypes, gradient
transformations, arrays' dtypes and shapes, train states. Used as ``check.<rule>`` through
:mod:`jopt._check`, with its message shape ``"<name> must be <rule>, got <value>; <fix>"``.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np


def _is_bool_leaf(leaf: Any) -> bool:
    if isinstance(leaf, (bool, np.bool_, jax.core.Tracer)):
        return True
    return isinstance(leaf, (np.ndarray, jax.Array)) and leaf.dtype == np.bool_ and not leaf.ndim


def mask(name: str, value: Any) -> None:
    """A mask: a function of the params, or a pytree of bools (its structure is checked at init)."""
    if callable(value):
        return
    leaves = jax.tree_util.tree_flatten_with_path(value)[0]
    bad = next(((p, leaf) for p, leaf in leaves if not _is_bool_leaf(leaf)), None)
    if value is None or bad is not None:
        where = f" (at {jax.tree_util.keystr(bad[0]) or '<root>'}: {bad[1]!r})" if bad else ""
        raise TypeError(
            f"{name} must be a pytree of bools or a function of the params, got {value!r}"
            f"{where}; build it from the params, e.g. jax.tree.map(lambda p: p.ndim > 1, params)"
        )


def prng_key(name: str, value: Any, seed_ok: bool = True) -> None:
    """A ``jax.random.key``, a legacy uint32 key of shape (2,), or (if ``seed_ok``) an int seed."""
    if isinstance(value, jax.core.Tracer):
        return
    kind = getattr(value, "dtype", None)
    if kind is not None and jax.dtypes.issubdtype(kind, jax.dtypes.prng_key):
        return
    is_int = not isinstance(value, bool) and (
        isinstance(value, (int, np.integer))
        or (kind is not None and np.issubdtype(kind, np.integer))
    )
    if is_int and (np.shape(value) == (2,) or (seed_ok and np.shape(value) == ())):
        return
    what = "an int seed or a jax.random.key" if seed_ok else "a jax.random.key"
    raise TypeError(f"{name} must be {what}, got {value!r}; pass e.g. jax.random.key(0)")


def dimension_numbers(name: str, value: Any, kind: type) -> None:
    """None, a function of the params, or a pytree of ``kind`` (None where a leaf has none)."""
    if value is None or callable(value):
        return
    leaves = jax.tree.leaves(value, is_leaf=lambda x: x is None or isinstance(x, kind))
    bad = [x for x in leaves if not (x is None or isinstance(x, kind))]
    if bad:
        raise TypeError(
            f"{name} must be a {kind.__name__}, a pytree of them or a function of the params, "
            f"got {bad[0]!r}; pass e.g. {kind.__name__}(reduction_axis=0, output_axis=1)"
        )


def dtype(name: str, value: Any) -> Any:
    """None, or something ``jnp.dtype`` understands; returns it canonicalized (or None).

    Canonical means what JAX will actually allocate: ``float64`` becomes ``float32``
    unless x64 is enabled, as optax's ``canonicalize_dtype`` does.
    """
    if value is None:
        return None
    try:
        jax.numpy.dtype(value)
        return jax.dtypes.canonicalize_dtype(value)
    except TypeError:
        raise TypeError(
            f"{name} must be a dtype such as jnp.float32 or None, got {value!r}"
        ) from None


def is_transformation(value: Any) -> bool:
    """Whether ``value`` is a gradient transformation (jopt's, optax's or any duck type)."""
    return hasattr(value, "init") and hasattr(value, "update")


def transformation(name: str, value: Any) -> None:
    """A gradient transformation: an object with ``init`` and ``update``."""
    if not is_transformation(value):
        raise TypeError(
            f"{name} must be a GradientTransformation (with init and update), got {value!r}; "
            "call the factory, e.g. jopt.adam(1e-3) rather than jopt.adam"
        )


def params_given(transform: str, params: Any) -> None:
    """Transforms that read the parameters need ``params`` in ``update``."""
    if params is None:
        raise ValueError(
            f"params must be passed to {transform}'s update, got None; "
            "call tx.update(updates, state, params)"
        )


def array_dtype(name: str, array: Any, kind: Any, example: str) -> None:
    """An array whose dtype is a subdtype of ``kind`` (e.g. ``jnp.floating``)."""
    got = jax.dtypes.result_type(array)
    if not jax.numpy.issubdtype(got, kind):
        raise TypeError(f"{name} must have a {kind.__name__} dtype, got {got}; {example}")


def same_shape(name: str, array: Any, other_name: str, other: Any) -> None:
    """Two arrays of one shape (no broadcasting)."""
    shape, other_shape = np.shape(array), np.shape(other)
    if shape != other_shape:
        raise ValueError(
            f"{name} has shape {shape} but {other_name} has shape {other_shape}; "
            f"pass arrays of the same shape"
        )


def train_state(name: str, value: Any, expected: type) -> None:
    """An instance of ``expected`` (:class:`jopt.train.TrainState`, passed in: ``_check``
    sits below train). A flax ``TrainState`` is named, with how to build jopt's from it."""
    if isinstance(value, expected):
        return
    kind = type(value)
    if kind.__module__.startswith("flax.") and hasattr(value, "apply_gradients"):
        raise TypeError(
            f"{name} must be a jopt.train.TrainState, got flax's {kind.__module__}."
            f"{kind.__name__}; build jopt's from it, keeping its progress: "
            "jopt.train.TrainState.create(state.params, state.tx, apply_fn=state.apply_fn)"
            ".replace(step=state.step, opt_state=state.opt_state)"
        )
    raise TypeError(
        f"{name} must be a jopt.train.TrainState, got {kind.__name__}; build one "
        "with jopt.train.TrainState.create(params, tx)"
    )


def argument_names(name: str, names: Any, signature: Any, owner: str) -> None:
    """Every entry of ``names`` is a parameter of ``signature`` (``owner``'s)."""
    unknown = sorted(set(names) - set(signature.parameters))
    if unknown:
        raise ValueError(
            f"{name} must name arguments of {owner}, got unknown {unknown}; "
            f"pick from {sorted(signature.parameters)}"
        )


def static_value(owner: str, name: str, value: Any, declared: Any) -> None:
    """A structural argument (declared with ``jopt.static_args``) is not an array."""
    if isinstance(value, (jax.Array, jax.core.Tracer)):
        raise TypeError(
            f"{owner}'s {name} fixes the structure of its state and must be a Python value, "
            f"got an array {value!r}; optax.inject_hyperparams passes every number as one: "
            f"give it static_args={tuple(sorted(declared))}, or use jopt.inject_hyperparams, "
            "which knows them"
        )
