"""Reading a checkpoint's step: verify its files, read its metadata, restore its arrays.

Only a damaged file (lost, cut or changed: :func:`jopt.train._integrity.is_damage`) becomes
a :class:`CheckpointCorruptedError`, which :meth:`Checkpointer.restore` may fall back from;
any other error (a caller's) propagates as it is.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import jax
import orbax.checkpoint as ocp

from jopt.train import _integrity
from jopt.train._checkpoint_match import check_matches
from jopt.train._checkpoint_tree import in_live_names, in_saved_names, key_data
from jopt.train._integrity import CheckpointCorruptedError
from jopt.train._state import TrainState


@dataclasses.dataclass(frozen=True)
class Restored:
    """What :meth:`Checkpointer.restore` returns."""

    state: TrainState
    early_stopping: Any  # an EarlyStoppingState, or None if none was saved
    epoch: int  # the epoch to continue in
    batch: int  # the batch of that epoch to continue from
    seed: int | None  # the data-order seed the run used
    history: list[dict[str, Any]]  # the per-epoch rows recorded so far
    step: int  # the checkpoint's step
    loop: dict[str, Any] = dataclasses.field(default_factory=dict)  # fit's own state, {} if none


class StepReader:
    """Reads the steps of one checkpoint folder through its orbax manager."""

    def __init__(self, manager: Any, directory: str) -> None:
        self.manager, self.directory = manager, directory

    def folder(self, step: int) -> str:
        return os.path.join(self.directory, str(step))

    def read(self, step: int, what: str, read: Callable[[], Any]) -> Any:
        """Run an orbax read, turning a damaged file's error into CheckpointCorruptedError."""
        try:
            return read()
        except Exception as error:
            if not _integrity.is_damage(error):
                raise  # a caller's bug, not a damaged file: no fallback hides it
            reason = f"orbax could not read its {what} ({type(error).__name__}: {error})"
            raise CheckpointCorruptedError(step, self.folder(step), None, reason) from error

    def read_meta(self, step: int) -> dict[str, Any]:
        args = ocp.args.Composite(meta=ocp.args.JsonRestore())
        meta = self.read(step, "metadata", lambda: self.manager.restore(step, args=args))["meta"]
        if not isinstance(meta, dict) or "epoch" not in meta:
            raise CheckpointCorruptedError(step, self.folder(step), "meta", "missing or empty")
        return meta

    def verify(self, step: int) -> dict[str, Any]:
        """Check the step's files against its manifest; return its metadata."""
        folder = self.folder(step)
        files = _integrity.read_manifest(folder, step)
        if files is not None:
            _integrity.verify(folder, step, files)
        meta = self.read_meta(step)
        if files is None and meta.get("checksums"):
            raise CheckpointCorruptedError(
                step, folder, _integrity.MANIFEST,
                "missing (deleted, or the process stopped between the commit and the manifest)",
            )  # fmt: skip
        return meta

    def restore_step(self, step: int, state: TrainState, target: Any, cast: bool) -> Restored:
        meta = self.verify(step)
        saved = self.read(step, "array metadata", lambda: self.manager.item_metadata(step))
        saved = saved.get("state") if saved is not None else None
        if saved is None:
            raise CheckpointCorruptedError(step, self.folder(step), "state", "no array metadata")
        template, target = target["early_stopping"], in_saved_names(target, saved)
        check_matches(saved, target, step, cast)
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
        args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
        tree = self.read(step, "arrays", lambda: self.manager.restore(step, args=args))["state"]
        rng = tree["rng"]
        if key_data(state.rng) is not state.rng:  # a typed key: saved as its raw data
            rng = jax.random.wrap_key_data(rng, impl=jax.random.key_impl(state.rng))
        new_state = state.replace(
            step=tree["step"], params=tree["params"], opt_state=tree["opt_state"],
            rng=rng, extras=tree["extras"],
        )  # fmt: skip
        es_state = in_live_names(tree["early_stopping"], template)
        return Restored(
            new_state, es_state, meta["epoch"], meta["batch"], meta["seed"],
            meta["history"], step, meta.get("loop", {}),
        )  # fmt: skip
