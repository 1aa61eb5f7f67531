"""Checkpoints of a training run on orbax-checkpoint: save, keep, verify, restore and resume.

A checkpoint holds everything a run needs to continue exactly: the
:class:`~jopt.train.TrainState` (step, params, optimizer state, rng, extras),
the early-stopping state, the data position (epoch, batch, seed), the loop's own
state (running metric sums, a data iterator's state) and the history so far.

What a restore guarantees:

- **Atomic commit.** orbax writes to a temporary folder and renames it when
  complete, so a crash mid-save leaves the previous checkpoints intact.
- **Integrity.** On commit every file of the step folder gets a CRC-32 in a
  manifest; a restore checks them all first, so a flipped byte, a cut or a lost
  file raises :class:`CheckpointCorruptedError` (naming the step, the file and what
  is wrong) instead of restoring other values.
- **Fallback.** Restoring the latest checkpoint skips damaged ones with a warning
  and uses the newest intact one; nothing is deleted.
- **Dtypes.** A leaf comes back in the dtype it was saved in; a template of another
  dtype is an error naming the leaf, unless ``cast=True``.

Restoring needs the live state as a template: orbax alone returns optimizer
states as lists and dicts, while restoring into the template gives back the
same NamedTuples. A checkpoint of another structure fails with the first
mismatching path.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from typing import Any, Literal

import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

from jopt import _check as check
from jopt.train import _integrity
from jopt.train._checkpoint_read import Restored, StepReader
from jopt.train._checkpoint_tree import json_dict, saved_tree
from jopt.train._integrity import CheckpointCorruptedError
from jopt.train._progress import Progress
from jopt.train._state import TrainState

_MARKER = _integrity.MARKER
_FORMAT = {"format": "jopt.train.checkpoint", "version": 1}
_DAMAGED = "damaged"  # where a damaged step is moved when a resumed run saves that step again

__all__ = [
    "CheckpointCorruptedError",
    "Checkpointer",
    "Restored",
]


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
      checksums: write a manifest of CRC-32s of the checkpoint's files on commit and
        verify it on restore (see the module docstring); False saves the hashing time
        and restores unverified.

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
        checksums: bool = True,
    ) -> None:
        check.optional(check.integer, "every_epochs", every_epochs, 1)
        check.optional(check.integer, "every_steps", every_steps, 1)
        check.integer("keep_last", keep_last, 1, "pass 1 to keep only the newest checkpoint")
        check.integer("keep_best", keep_best, 0)
        check.one_of("mode", mode, ("min", "max"))
        check.boolean("async_save", async_save)
        check.boolean("checksums", checksums)
        self.directory = os.path.abspath(os.fspath(directory))
        self.every_epochs, self.every_steps = every_epochs, every_steps
        self.metric, self.mode, self.checksums = metric, mode, checksums
        self._claim_directory()
        options = _manager_options(keep_last, keep_best, metric, mode, async_save, checksums)
        self._manager = _integrity.TolerantManager(
            self.directory,
            options=options,
            # Named handlers let a fresh process read a folder's metadata before any save.
            item_handlers={
                "state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler(),
            },
        )  # fmt: skip
        self._reader = StepReader(self._manager, self.directory)

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
        loop: dict[str, Any] | None = None,
    ) -> None:
        """Save a checkpoint at ``state.step``; ``(epoch, batch)`` is where training continues.

        ``loop`` is a JSON-serialisable dict of the loop's own state (running metric
        sums and counts, a data iterator's state); :attr:`Restored.loop` gives it back.
        """
        step = int(state.step)
        meta = {
            "epoch": int(epoch), "batch": int(batch), "seed": seed, "history": history or [],
            "loop": json_dict(loop), "checksums": self.checksums,
        }  # fmt: skip
        # A step without the metric ranks worst, so it is never the "best" one.
        value = (metrics or {}).get(self.metric, float("inf" if self.mode == "min" else "-inf"))
        ranked = {self.metric: float(value)}
        if step in self.all_steps():
            self.wait()  # an asynchronous save of this very step must finish before the check
            self._set_aside_if_damaged(step)
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(saved_tree(state, early_stopping)),
                meta=ocp.args.JsonSave(meta),
            ),
            metrics=ranked,
            force=True,
        )

    def _set_aside_if_damaged(self, step: int) -> None:
        """A resumed run that fell back re-saves the damaged step: move the damaged one aside."""
        try:
            self._reader.verify(step)
        except CheckpointCorruptedError as error:
            kept = os.path.join(self.directory, _DAMAGED, f"{step}-{time.time_ns()}")
            os.makedirs(os.path.dirname(kept), exist_ok=True)
            os.rename(self._reader.folder(step), kept)
            self._manager.reload()
            warnings.warn(f"{error}; moved it to {kept!r} to save step {step} again", stacklevel=3)

    def all_steps(self) -> list[int]:
        """Steps of the complete checkpoints on disk, oldest first (intact or not)."""
        return sorted(self._manager.all_steps())

    def latest_step(self) -> int | None:
        """The newest complete checkpoint's step (intact or not), or None."""
        return self._manager.latest_step()

    def best_step(self) -> int | None:
        """The step whose ``metric`` is best among those saved with it, or None."""
        return self._manager.best_step()

    def intact_steps(self) -> list[int]:
        """Steps of the checkpoints whose files verify, oldest first (reads every file)."""
        self.wait()
        intact = []
        for step in self.all_steps():
            try:
                self._reader.verify(step)
            except CheckpointCorruptedError:
                continue
            intact.append(step)
        return intact

    def restore(
        self,
        state: TrainState,
        *,
        early_stopping: Any = None,
        step: int | Literal["latest", "best"] = "latest",
        cast: bool = False,
    ) -> Restored:
        """Restore into the structure of ``state`` (and ``early_stopping``): types come back intact.

        The checkpoint's files are verified first. With ``step="latest"`` a damaged
        checkpoint is skipped with a warning (naming its step, the file and what is
        wrong) for the newest intact one; a damaged ``"best"`` or numbered step raises
        :class:`CheckpointCorruptedError`, which lists the intact steps.

        Args:
          state: the live state (or one built the same way); its leaves give
            the structure, shapes, dtypes and shardings to restore into.
          early_stopping: the live early-stopping state, if one was saved.
          step: ``"latest"``, ``"best"`` (by ``metric``) or a step number.
          cast: convert saved leaves to the dtypes of ``state``'s leaves; without
            it a dtype difference raises an error naming the leaf and both dtypes.
        """
        check.boolean("cast", cast)
        self.wait()
        candidates = self._candidates(step)
        target = saved_tree(state, early_stopping)
        for candidate in candidates:
            try:
                return self._reader.restore_step(candidate, state, target, cast)
            except CheckpointCorruptedError as error:
                if step != "latest":
                    raise error.with_intact(self.intact_steps()) from error.__cause__
                older = [s for s in candidates if s < candidate]
                if not older:
                    raise error.with_intact([]) from error.__cause__
                warnings.warn(
                    f"{error}; skipping it (the folder is kept) for the older checkpoint "
                    f"{older[0]}", stacklevel=2,
                )  # fmt: skip
        raise AssertionError("unreachable: the last candidate returns or raises")

    def _candidates(self, step: int | str) -> list[int]:
        """The steps a restore of ``step`` tries, in order ("latest": newest first)."""
        if step in ("latest", "best"):
            chosen = self.latest_step() if step == "latest" else self.best_step()
            if chosen is None:
                raise FileNotFoundError(
                    f"no {step} checkpoint in {self.directory!r}; train with this "
                    "Checkpointer first, or start without resume"
                )
        elif step in self.all_steps():
            chosen = step
        else:
            raise ValueError(
                f"step must be one of {self.all_steps()}, 'latest' or 'best', got {step!r}"
            )
        return self.all_steps()[::-1] if step == "latest" else [chosen]

    def save_progress(self, progress: Progress, metrics: dict[str, Any] | None = None) -> None:
        """Save a :func:`~jopt.train.fit` run's whole record (``metrics`` ranks it)."""
        self.save(progress.state, metrics=metrics, **progress.saved())

    def restore_progress(self, progress: Progress, **kwargs: Any) -> Progress:
        """The record saved by :meth:`save_progress` (or by the first release's ``fit``),
        restored into the structure of ``progress``; ``kwargs`` as in :meth:`restore`."""
        restored = self.restore(progress.state, early_stopping=progress.early_stopping_state,
                                **kwargs)  # fmt: skip
        return Progress.from_restored(restored)

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


def _manager_options(keep_last: int, keep_best: int, metric: str, mode: str, async_save: bool,
                     checksums: bool) -> ocp.CheckpointManagerOptions:  # fmt: skip
    """orbax's options for a :class:`Checkpointer`: what it keeps, ranks and verifies."""
    keep = [policies.LatestN(n=keep_last)]
    if keep_best:
        keep.append(policies.BestN(
            get_metric_fn=lambda metrics: metrics[metric], reverse=mode == "min",
            # A step saved without the metric ranks worst (see save); one whose metrics
            # file is damaged has none and is kept: damage never deletes a checkpoint.
            n=keep_best, keep_checkpoints_without_metrics=True,
        ))  # fmt: skip
    return ocp.CheckpointManagerOptions(
        preservation_policy=policies.AnyPreservationPolicy(keep),
        # best_fn makes orbax write the metrics and rank the steps for best_step().
        best_fn=lambda metrics: metrics[metric],
        best_mode=mode,
        enable_async_checkpointing=async_save,
        cleanup_tmp_directories=True,
        # orbax's atomic rename, followed by the manifest of the committed folder.
        temporary_path_class=_integrity.ManifestOnCommit if checksums else None,
    )
