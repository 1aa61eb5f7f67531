"""Rules on whole pytrees: matching structures and shapes, float leaves, ``update``'s inputs.

Part of :mod:`jopt._check` (call sites use ``check.same_structure`` and the like). Every
check runs in Python at trace time; a mismatch names the first differing key path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np


def first_mismatch(tree: Any, reference: Any) -> str | None:
    """Describe the first path where ``tree``'s structure differs from ``reference``'s."""
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
    ref_paths = [
        jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(reference)[0]
    ]
    for got, expected in zip(paths, ref_paths, strict=False):
        if got != expected:
            return f"at {got or '<root>'} (expected {expected or '<root>'})"
    if len(paths) != len(ref_paths):
        longer, missing = (
            (paths, "extra") if len(paths) > len(ref_paths) else (ref_paths, "missing")
        )
        return f"{missing} leaf {longer[min(len(paths), len(ref_paths))] or '<root>'}"
    if jax.tree.structure(tree) != jax.tree.structure(reference):
        return "in the container types"
    return None


def same_structure(name: str, tree: Any, reference: Any, reference_name: str, fix: str) -> None:
    """Raise a ValueError naming the first mismatching path of two pytrees."""
    where = first_mismatch(tree, reference)
    if where is not None:
        raise ValueError(
            f"{name} has structure {jax.tree.structure(tree)} but {reference_name} have "
            f"{jax.tree.structure(reference)}; they differ {where}. {fix}"
        )


FLOAT_PARAMS_FIX = (
    "freeze such a leaf with jopt.partition({'train': tx, 'frozen': jopt.set_to_zero()}, labels) "
    "or jopt.masked, or keep it outside the params (e.g. in a separate state pytree)"
)
"""The fix an optimizer that updates floating-point leaves only names for any other leaf."""


def inexact_leaves(name: str, tree: Any, fix: str = FLOAT_PARAMS_FIX) -> None:
    """Every leaf of ``tree`` is an array (or number) of floating or complex dtype.

    The message names the first other leaf's path and its type or dtype.
    """
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        where = jax.tree_util.keystr(path) or "<root>"
        if not hasattr(leaf, "dtype") and not isinstance(leaf, (bool, int, float, complex)):
            raise TypeError(
                f"{name} must have array leaves, got {type(leaf).__name__} {leaf!r} at {where}; "
                f"{fix}"
            )
        kind = jax.dtypes.result_type(leaf)
        if not jax.numpy.issubdtype(kind, jax.numpy.inexact):
            raise TypeError(f"{name} must have float leaves, got {kind} at {where}; {fix}")


def _shapes(tree: Any) -> tuple[tuple[int, ...], ...]:
    return tuple(np.shape(leaf) for leaf in jax.tree.leaves(tree))


def _first_shape_mismatch(tree: Any, reference: Any) -> tuple[str, Any, Any] | None:
    pairs = zip(
        jax.tree_util.tree_flatten_with_path(tree)[0], jax.tree.leaves(reference), strict=False
    )
    for (path, leaf), other in pairs:
        # Same rank, other shape: a transposed or mis-sized gradient. A leading extra axis
        # is legitimate (per-example gradients for differential privacy).
        if np.ndim(leaf) == np.ndim(other) and np.shape(leaf) != np.shape(other):
            return jax.tree_util.keystr(path) or "<root>", np.shape(leaf), np.shape(other)
    return None


def update_inputs(
    owner: str, init: Callable[[Any], Any], updates: Any, state: Any, params: Any, seen: set
) -> None:
    """The arguments of ``update`` agree with each other and with ``init`` (trace time only).

    ``updates`` and ``params`` have one structure and one shape per leaf, and ``state`` has
    the structure ``init`` gives for them; each mismatch names the first differing key path.
    ``seen`` caches the structures and shapes already checked, so an eager loop pays for a
    flatten and a set lookup, and a jitted step for nothing at all after tracing.
    """
    if state is None:
        raise TypeError(
            f"{owner}'s update got state=None; call state = tx.init(params) once, then "
            "updates, state = tx.update(grads, state, params)"
        )
    key = (
        jax.tree.structure(updates), _shapes(updates), jax.tree.structure(state),
        None if params is None else (jax.tree.structure(params), _shapes(params)),
    )  # fmt: skip
    if key in seen:
        return
    fix = "compute the gradient with respect to these params, e.g. jax.grad(loss)(params)"
    if params is not None:
        same_structure("updates", updates, params, "params", fix)
        wrong = _first_shape_mismatch(updates, params)
        if wrong is not None:
            path, got, want = wrong
            raise ValueError(
                f"updates has shape {got} at {path} but params has shape {want} there; {fix}"
            )
    try:
        expected = jax.eval_shape(init, updates if params is None else params)
    except Exception:  # noqa: BLE001 - an init that cannot run abstractly: nothing to compare
        expected = state
    where = first_mismatch(state, expected)
    if where is not None:
        raise ValueError(
            f"{owner}'s update got a state that is not the one its init builds for these "
            f"{'updates' if params is None else 'params'}: it differs {where} (the state of "
            "another optimizer, the params passed as the state, or a gradient tree that does "
            "not match the params); call state = tx.init(params) with this transform"
        )
    seen.add(key)
