"""The tree of arrays a checkpoint holds, and the names the first release saved it under."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jax

from jopt.train._state import TrainState

# EarlyStoppingState fields renamed by issue 24 (they hold epochs): the saved name of each.
_FIRST_RELEASE_NAMES = {"best_epoch": "best_step", "stopped_epoch": "stopped_step"}


def key_data(rng: Any) -> Any:
    """A typed PRNG key as its raw data (what orbax can save); anything else as it is."""
    if rng is not None and jax.dtypes.issubdtype(rng.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(rng)
    return rng


def saved_tree(state: TrainState, early_stopping: Any) -> dict[str, Any]:
    """What :meth:`Checkpointer.save` writes, and the template a restore reads into."""
    return {
        "step": state.step,
        "params": state.params,
        "opt_state": state.opt_state,
        "rng": key_data(state.rng),
        "extras": state.extras,
        "early_stopping": early_stopping,
    }


def in_saved_names(target: dict[str, Any], saved: Mapping[str, Any]) -> dict[str, Any]:
    """``target`` with the early-stopping state under the field names ``saved`` (the
    checkpoint's metadata tree) uses: a checkpoint of the first release has the old ones."""
    es_state, saved_es = target["early_stopping"], saved.get("early_stopping")
    if not (hasattr(es_state, "_asdict") and isinstance(saved_es, Mapping)):
        return target
    if not set(_FIRST_RELEASE_NAMES.values()) <= set(saved_es):
        return target
    old = {_FIRST_RELEASE_NAMES.get(k, k): v for k, v in es_state._asdict().items()}
    return {**target, "early_stopping": old}


def in_live_names(restored: Any, template: Any) -> Any:
    """The restored early-stopping state as ``template``'s type (undoes :func:`in_saved_names`)."""
    if not (hasattr(template, "_asdict") and isinstance(restored, Mapping)):
        return restored
    new = {v: k for k, v in _FIRST_RELEASE_NAMES.items()}
    return type(template)(**{new.get(k, k): v for k, v in restored.items()})


def json_dict(loop: dict[str, Any] | None) -> dict[str, Any]:
    """``loop`` checked to be a JSON-serialisable dict ({} for None)."""
    if loop is None:
        return {}
    try:
        if not isinstance(loop, dict):
            raise TypeError(f"a {type(loop).__name__}")
        json.dumps(loop)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"loop must be a JSON-serialisable dict, got {error}; convert arrays to lists "
            "or numbers (float(x), x.tolist()) before saving"
        ) from None
    return loop
