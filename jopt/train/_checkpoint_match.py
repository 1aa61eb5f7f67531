"""Does a checkpoint fit the state it is restored into? Paths, shapes and dtypes, by leaf path."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from jopt import _check as check


def plain_paths(tree: Any) -> dict[str, Any]:
    """Leaves keyed by a path that ignores container types (orbax saves NamedTuples as dicts)."""

    def part(key: Any) -> str:
        for attr in ("key", "idx", "name"):
            if hasattr(key, attr):
                return str(getattr(key, attr))
        return str(key)

    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {"/".join(part(k) for k in path): leaf for path, leaf in flat}


def _dtype(leaf: Any) -> np.dtype:
    # A Python scalar in the template becomes what JAX would make of it (int32 without x64).
    return jax.dtypes.canonicalize_dtype(getattr(leaf, "dtype", None) or np.result_type(leaf))


_FIX = (
    "restore into a state built exactly like the one that was saved (same model, "
    "same optimizer chain), or start a new checkpoint folder"
)


def check_matches(saved: Any, target: Any, step: int, cast: bool) -> None:
    """Raise a ValueError naming the first leaf path whose structure, shape or dtype differs.

    ``saved`` is orbax's metadata tree of the checkpoint, ``target`` the tree to restore
    into. A dtype difference is an error unless ``cast`` (restoring would round or widen
    the saved values without a word).
    """
    saved_paths, target_paths = plain_paths(saved), plain_paths(target)
    where = check.first_mismatch(dict.fromkeys(saved_paths, 0), dict.fromkeys(target_paths, 0))
    if where is not None:
        raise ValueError(
            f"checkpoint {step} does not match the state to restore into: the checkpoint's "
            f"leaves differ from the state's {where}; {_FIX}"
        )
    for path, leaf in target_paths.items():
        got = tuple(getattr(saved_paths[path], "shape", ()) or ())
        want = tuple(np.shape(leaf))
        if got != want:
            raise ValueError(
                f"checkpoint {step} has shape {got} at {path} but the state to restore into "
                f"has {want}; {_FIX}"
            )
        saved_dtype = getattr(saved_paths[path], "dtype", None)
        if cast or saved_dtype is None:
            continue
        if np.dtype(saved_dtype) != _dtype(leaf):
            raise ValueError(
                f"checkpoint {step} has dtype {np.dtype(saved_dtype).name} at {path} but the "
                f"state to restore into has {_dtype(leaf).name}, and restoring would convert "
                "the saved values; build the state with the saved dtypes, or pass cast=True "
                "to convert them"
            )
