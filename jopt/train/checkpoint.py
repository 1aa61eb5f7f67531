"""Checkpoints of a training run on orbax-checkpoint: save, keep, restore, resume.

A checkpoint holds everything a run needs to continue exactly: the
:class:`~jopt.train.TrainState` (step, params, optimizer state, rng, extras),
the early-stopping state, the data position (epoch, batch, seed) and the
history so far. Saving is asynchronous by default and atomic: orbax writes to a
temporary folder and renames it when complete, so a crash mid-save leaves the
previous checkpoint intact (the half-written folder is ignored and cleaned up).

Restoring needs the live state as a template: orbax alone returns optimizer
states as lists and dicts, while restoring into the template gives back the
same NamedTuples. A checkpoint of another structure fails with the first
mismatching path.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Literal

import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

from jopt import _check as check
from jopt.train._state import TrainState

_MARKER = "jopt_checkpoints.json"
_FORMAT = {"format": "jopt.train.checkpoint", "version": 1}

__all__ = [
    "Checkpointer",
    "Restored",
]


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


def _plain_paths(tree: Any) -> dict[str, Any]:
    """Leaves keyed by a path that ignores container types (orbax saves NamedTuples as dicts)."""

    def part(key: Any) -> str:
        for attr in ("key", "idx", "name"):
            if hasattr(key, attr):
                return str(getattr(key, attr))
        return str(key)

    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {"/".join(part(k) for k in path): leaf for path, leaf in flat}


def _key_data(rng: Any) -> Any:
    if rng is not None and jax.dtypes.issubdtype(rng.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(rng)
    return rng


def _saved_tree(state: TrainState, early_stopping: Any) -> dict[str, Any]:
    return {
        "step": state.step,
        "params": state.params,
        "opt_state": state.opt_state,
        "rng": _key_data(state.rng),
        "extras": state.extras,
        "early_stopping": early_stopping,
    }


class Checkpointer:
    """Save a run every N epochs or steps; keep the last k and the best k; restore and resume.

    Args:
      directory: a new or empty folder, or one this class wrote before.
      every_epochs: save at the end of every this many epochs (None: never at epoch ends).
      every_steps: also save every this many optimizer steps (None: only at epoch ends).
      keep_last: keep the newest this many checkpoints, an integer >= 1.
      keep_best: also keep the best this many by ``metric`` (0: none).
      metric: the history key ranking checkpoints, e.g. ``"val_loss"``.
      mode: ``"min"`` or ``"max"``: whether a lower or higher ``metric`` is better.
      async_save: write in a background thread (the arrays are copied first).

    Example:
      >>> ckpt = Checkpointer("/tmp/run", keep_last=2, keep_best=1)  # doctest: +SKIP
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        every_epochs: int | None = 1,
        every_steps: int | None = None,
        keep_last: int = 1,
        keep_best: int = 0,
        metric: str = "val_loss",
        mode: Literal["min", "max"] = "min",
        async_save: bool = True,
    ) -> None:
        check.optional(check.integer, "every_epochs", every_epochs, 1)
        check.optional(check.integer, "every_steps", every_steps, 1)
        check.integer("keep_last", keep_last, 1, "pass 1 to keep only the newest checkpoint")
        check.integer("keep_best", keep_best, 0)
        check.one_of("mode", mode, ("min", "max"))
        check.boolean("async_save", async_save)
        self.directory = os.path.abspath(os.fspath(directory))
        self.every_epochs, self.every_steps = every_epochs, every_steps
        self.metric, self.mode = metric, mode
        self._claim_directory()
        keep = [policies.LatestN(n=keep_last)]
        if keep_best:
            keep.append(policies.BestN(
                get_metric_fn=lambda metrics: metrics[metric], reverse=mode == "min",
                n=keep_best, keep_checkpoints_without_metrics=False,
            ))  # fmt: skip
        options = ocp.CheckpointManagerOptions(
            preservation_policy=policies.AnyPreservationPolicy(keep),
            # best_fn makes orbax write the metrics and rank the steps for best_step().
            best_fn=lambda metrics: metrics[metric],
            best_mode=mode,
            enable_async_checkpointing=async_save,
            cleanup_tmp_directories=True,
        )
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=options,
            # Named handlers let a fresh process read a folder's metadata before any save.
            item_handlers={
                "state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler(),
            },
        )  # fmt: skip

    def _claim_directory(self) -> None:
        marker = os.path.join(self.directory, _MARKER)
        if os.path.isdir(self.directory) and os.listdir(self.directory):
            if not os.path.exists(marker):
                found = sorted(os.listdir(self.directory))[:5]
                raise ValueError(
                    f"directory {self.directory!r} holds files that are not jopt checkpoints "
                    f"({', '.join(found)}); pass a new or empty folder, or the folder of an "
                    "earlier Checkpointer"
                )
            return
        os.makedirs(self.directory, exist_ok=True)
        with open(marker, "w") as f:
            json.dump(_FORMAT, f)

    def should_save(self, step: int, epoch_end: int | None) -> bool:
        """Whether to save after optimizer step ``step`` (``epoch_end``: the epoch just ended)."""
        if epoch_end is not None and self.every_epochs and (epoch_end + 1) % self.every_epochs == 0:
            return True
        return bool(self.every_steps) and step % self.every_steps == 0

    def save(
        self,
        state: TrainState,
        *,
        early_stopping: Any = None,
        epoch: int = 0,
        batch: int = 0,
        seed: int | None = None,
        history: list[dict[str, Any]] | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> None:
        """Save a checkpoint at ``state.step``; ``(epoch, batch)`` is where training continues."""
        step = int(state.step)
        meta = {
            "epoch": int(epoch), "batch": int(batch), "seed": seed, "history": history or [],
        }  # fmt: skip
        # A step without the metric ranks worst, so it is never the "best" one.
        value = (metrics or {}).get(self.metric, float("inf" if self.mode == "min" else "-inf"))
        ranked = {self.metric: float(value)}
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(_saved_tree(state, early_stopping)),
                meta=ocp.args.JsonSave(meta),
            ),
            metrics=ranked,
            force=True,
        )

    def all_steps(self) -> list[int]:
        """Steps of the complete checkpoints on disk, oldest first."""
        return sorted(self._manager.all_steps())

    def latest_step(self) -> int | None:
        """The newest complete checkpoint's step, or None."""
        return self._manager.latest_step()

    def best_step(self) -> int | None:
        """The step whose ``metric`` is best among those saved with it, or None."""
        return self._manager.best_step()

    def restore(
        self,
        state: TrainState,
        *,
        early_stopping: Any = None,
        step: int | Literal["latest", "best"] = "latest",
    ) -> Restored:
        """Restore into the structure of ``state`` (and ``early_stopping``): types come back intact.

        Args:
          state: the live state (or one built the same way); its leaves give
            the structure, shapes, dtypes and shardings to restore into.
          early_stopping: the live early-stopping state, if one was saved.
          step: ``"latest"``, ``"best"`` (by ``metric``) or a step number.
        """
        self.wait()
        if step in ("latest", "best"):
            chosen = self.latest_step() if step == "latest" else self.best_step()
            if chosen is None:
                raise FileNotFoundError(
                    f"no {step} checkpoint in {self.directory!r}; train with this "
                    "Checkpointer first, or start without resume"
                )
            step = chosen
        elif step not in self.all_steps():
            raise ValueError(
                f"step must be one of {self.all_steps()}, 'latest' or 'best', got {step!r}"
            )
        target = _saved_tree(state, early_stopping)
        saved = self._manager.item_metadata(step)["state"]
        _check_matches(saved, target, step)
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
        restored = self._manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
            ),
        )
        tree, meta = restored["state"], restored["meta"]
        rng = tree["rng"]
        if _key_data(state.rng) is not state.rng:  # a typed key: saved as its raw data
            rng = jax.random.wrap_key_data(rng, impl=jax.random.key_impl(state.rng))
        new_state = state.replace(
            step=tree["step"], params=tree["params"], opt_state=tree["opt_state"],
            rng=rng, extras=tree["extras"],
        )  # fmt: skip
        return Restored(
            new_state, tree["early_stopping"], meta["epoch"], meta["batch"], meta["seed"],
            meta["history"], step,
        )  # fmt: skip

    def wait(self) -> None:
        """Block until pending asynchronous saves are on disk."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        """Finish pending saves and release the manager's threads."""
        self._manager.close()

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _check_matches(saved: Any, target: Any, step: int) -> None:
    saved_paths, target_paths = _plain_paths(saved), _plain_paths(target)
    fix = (
        "restore into a state built exactly like the one that was saved (same model, "
        "same optimizer chain), or start a new checkpoint folder"
    )
    where = check.first_mismatch(dict.fromkeys(saved_paths, 0), dict.fromkeys(target_paths, 0))
    if where is not None:
        raise ValueError(
            f"checkpoint {step} does not match the state to restore into: the checkpoint's "
            f"leaves differ from the state's {where}; "
            f"{fix}"
        )
    for path, leaf in target_paths.items():
        got = tuple(getattr(saved_paths[path], "shape", ()) or ())
        want = tuple(np.shape(leaf))
        if got != want:
            raise ValueError(
                f"checkpoint {step} has shape {got} at {path} but the state to restore into "
                f"has {want}; {fix}"
            )
