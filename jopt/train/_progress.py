"""Where a training run stands: one record, owned by :func:`~jopt.train.fit`, saved whole
by the checkpoint and turned into the :class:`FitResult` at the end."""

from __future__ import annotations

import dataclasses
from typing import Any

from jopt.train._history import History
from jopt.train._state import TrainState


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What :func:`fit` and :func:`fit_compiled` return."""

    state: TrainState  # the final state (best params if early stopping restores them)
    history: History  # one row per epoch run
    early_stopping_state: Any  # the final EarlyStoppingState, or None
    stop_reason: str  # "epochs", "early_stopping" or "nonfinite"
    skipped_steps: int = 0  # bad steps (non-finite loss, params or state) not applied


@dataclasses.dataclass(frozen=True)
class Progress:
    """Where a run stands: what a checkpoint holds and a resumed run continues from.

    :func:`~jopt.train.fit` owns one, saves it whole with
    :meth:`Checkpointer.save_progress <jopt.train.checkpoint.Checkpointer.save_progress>`
    (:meth:`~jopt.train.checkpoint.Checkpointer.restore_progress` reads it back) and
    builds its :class:`FitResult` from it. Mid-epoch, ``batch`` batches of ``epoch`` are
    done and ``totals`` holds their running sums; at an epoch's end ``batch`` is 0 and
    ``totals`` None.
    """

    state: TrainState
    early_stopping_state: Any = None  # an EarlyStoppingState, or None
    history: tuple[dict[str, Any], ...] = ()  # the rows of the epochs done
    epoch: int = 0  # the epoch to run next, or the one in progress
    batch: int = 0  # the batch of that epoch to continue from
    skipped: int = 0  # bad steps skipped in the epochs before `epoch`
    totals: dict[str, Any] | None = None  # the epoch's running totals, as saved (JSON)
    source: Any = None  # the data source's state after `batch` (a grain iterator's)
    seed: int | None = None  # the data-order seed of a Batches
    stop_reason: str = "epochs"  # "epochs" while the run may go on

    @property
    def skipped_steps(self) -> int:
        """Bad steps skipped so far, the epoch in progress included."""
        return self.skipped + (self.totals["skipped"] if self.totals else 0)

    def replace(self, **changes: Any) -> Progress:
        """A copy with the given fields replaced."""
        return dataclasses.replace(self, **changes)

    def saved(self) -> dict[str, Any]:
        """The keyword arguments of :meth:`Checkpointer.save` that store this record.

        The ``loop`` record's ``skipped`` counts the epoch in progress too, as the first
        release wrote it, so checkpoints of either release restore alike.
        """
        loop = {"skipped": self.skipped_steps, "stop_reason": self.stop_reason}
        if self.totals is not None:
            loop.update(totals=self.totals, source=self.source)
        return {
            "early_stopping": self.early_stopping_state, "epoch": self.epoch,
            "batch": self.batch, "seed": self.seed, "history": list(self.history),
            "loop": loop,
        }  # fmt: skip

    @classmethod
    def from_restored(cls, restored: Any) -> Progress:
        """The record a :class:`~jopt.train.checkpoint.Restored` holds (any release's)."""
        loop = restored.loop
        totals = loop.get("totals")
        skipped = loop.get("skipped", 0) - (totals["skipped"] if totals else 0)
        stop_reason = loop.get("stop_reason", "epochs")
        es_state = restored.early_stopping
        if stop_reason == "epochs" and es_state is not None and bool(es_state.stopped):
            stop_reason = "early_stopping"  # a checkpoint of the first release
        return cls(restored.state, es_state, tuple(restored.history), restored.epoch,
                   restored.batch, skipped, totals, loop.get("source"), restored.seed,
                   stop_reason)  # fmt: skip

    def result(self, early_stopping: Any) -> FitResult:
        """The :class:`FitResult`: the best params when ``early_stopping`` restores them."""
        state, es_state = self.state, self.early_stopping_state
        if early_stopping is not None and early_stopping.restore_best:
            if int(es_state.best_epoch) >= 0:
                state = state.replace(params=es_state.best_params)
        return FitResult(state, History(self.history), es_state, self.stop_reason,
                         self.skipped_steps)  # fmt: skip
