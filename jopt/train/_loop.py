"""The training loop: epochs of steps, evaluation, early stopping, checkpoints, history.

:func:`fit` runs on the host (progress bar, checkpoints, resumption);
:func:`fit_compiled` runs the same loop as one XLA program for small in-memory
data, and gives the same result. Both are built from the same pure pieces
(:mod:`jopt.train._epoch`'s guarded step and running totals, :mod:`jopt.train._epoch_end`'s
row, evaluation, early stopping and stop rule). Where a run stands is one
:class:`~jopt.train._progress.Progress` record.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import jax

from jopt import _check as check
from jopt.train._epoch import (
    EpochTotals,
    StepFn,
    compiled_step,
    compiled_steps,
    metric_names,
    totals_from_json,
    totals_to_json,
    zero_totals,
)
from jopt.train._epoch_end import (
    EvalFn,
    eval_chunks,
    evaluate,
    mean_row,
    nonfinite_limit,
    start_early_stopping,
    stop_reason,
    update_early_stopping,
    validate_fit,
)
from jopt.train._progress import FitResult, Progress
from jopt.train._sources import epoch_items, prefetch, stacked_sharding, steps_per_epoch
from jopt.train._state import TrainState
from jopt.train.data import Batches
from jopt.train.early_stopping import EarlyStopping

__all__ = ["FitResult", "fit"]


def fit(
    state: TrainState,
    train_step: StepFn,
    train_data: Any,
    *,
    epochs: int,
    eval_step: EvalFn | None = None,
    eval_data: Any = None,
    early_stopping: EarlyStopping | None = None,
    checkpointer: Any = None,
    resume: bool = False,
    skip_nonfinite: bool = True,
    max_nonfinite: int | None = 10,
    progress: bool = True,
    progress_every: int = 20,
    steps_per_call: int = 16,
    batch_sharding: Any = None,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
) -> FitResult:
    """Train for ``epochs`` epochs, evaluating, stopping early and checkpointing as asked.

    Each epoch runs ``train_step`` (e.g. :func:`jopt.train.make_train_step`) over the
    epoch's batches, then ``eval_step`` over ``eval_data``; the row ``{"epoch", "step",
    <mean train metrics>, "val_<eval metrics>", "time"}`` is appended to the history and
    handed to ``on_epoch_end``.

    The step is compiled once per ``(train_step, skip_nonfinite)`` (one program for a
    batch, one for a stack of ``steps_per_call`` batches) and reused by later calls; the
    programs live on the :class:`~jopt.train.TrainStep` (or, for a plain function, in a
    weak cache), so they go when the step goes.
    Inside an epoch nothing waits on the device: the metrics are summed on the device by
    the compiled step, batches are put on the device ahead of use, and the progress bar
    shows values fetched ``progress_every`` steps earlier.

    A *bad* step (a NaN or infinite loss or gradient) is not applied
    (``skip_nonfinite``: the state is unchanged) and is counted in
    :attr:`FitResult.skipped_steps`. A :class:`~jopt.train.TrainStep` (what
    :func:`~jopt.train.make_train_step` returns) is judged before its update, which then
    runs in place on the donated state (donated only when ``train_step.donate``); any
    other callable (a step written by hand, or a wrapper around a TrainStep) is run as
    it is and judged after it ran, by its loss and new params and optimizer state,
    which keeps a second copy of the state alive for the choice (its input state is
    donated). After
    ``max_nonfinite`` of them in a row training stops with ``stop_reason="nonfinite"``
    and the last good params (None: never stop). With ``early_stopping.restore_best`` the
    returned params are the best ones (Keras semantics: also when training ran to the end).

    Args:
      state: the initial :class:`~jopt.train.TrainState`.
      train_step: ``step(state, batch) -> (state, metrics)`` with ``metrics["loss"]``.
      train_data: a :class:`~jopt.train.Batches`, any re-iterable of batches (a list, a
        grain dataset) or a function ``epoch -> iterable``. A mid-epoch resume continues
        a Batches exactly, a grain iterator from its saved state, and any other source
        by rebuilding the epoch and skipping the batches already trained on.
      epochs: total number of epochs (a resumed run continues up to it).
      eval_step: ``evaluate(state, batch) -> metrics`` (e.g. :func:`make_eval_step`).
      eval_data: a Batches or a pytree of arrays evaluated as one batch.
      early_stopping: an :class:`~jopt.train.early_stopping.EarlyStopping`.
      checkpointer: a :class:`~jopt.train.checkpoint.Checkpointer`.
      resume: continue from the checkpointer's latest intact checkpoint, if any.
      skip_nonfinite: do not apply bad steps.
      max_nonfinite: stop after this many bad steps in a row (None: never).
      progress: show a tqdm progress bar.
      progress_every: refresh the bar's values every this many steps.
      steps_per_call: run this many steps in one compiled call (by ``lax.scan`` over a
        stack of that many batches of one shape), which saves the per-call cost that
        dominates small steps (Keras's ``steps_per_execution``). Other batches (a
        shorter last one, the rest of an epoch) run one per call, as does every batch
        when the checkpointer saves every N steps, so that saves land on exact steps.
      batch_sharding: sharding (or pytree of them) to put each batch on, e.g.
        :func:`jopt.train.sharding.batch_sharding`; None: the default device.
      on_epoch_end: called with each epoch's row (e.g. to print it).
    """
    validate_fit(state, train_step, epochs, train_data, eval_step, eval_data, max_nonfinite,
                 skip_nonfinite)  # fmt: skip
    check.boolean("progress", progress)
    check.integer("progress_every", progress_every, 1)
    check.integer("steps_per_call", steps_per_call, 1)
    _check_resume(resume, checkpointer)
    record = _start(state, early_stopping, checkpointer, resume, train_data)
    stacked = stacked_sharding(batch_sharding)
    loop = _Loop(
        compiled_step(train_step, skip_nonfinite), compiled_steps(train_step, skip_nonfinite),
        _steps_per_call(steps_per_call, checkpointer, stacked, batch_sharding), train_step,
        train_data, nonfinite_limit(max_nonfinite), checkpointer, progress, progress_every,
        (batch_sharding, stacked), epochs, eval_step,
        eval_chunks(eval_data) if eval_step is not None else [], early_stopping, on_epoch_end,
    )  # fmt: skip
    try:
        while record.stop_reason == "epochs" and record.epoch < epochs:
            record = loop.run_epoch(record)
    finally:  # an error or interrupt leaves the last save whole, not half-written
        if checkpointer is not None:
            checkpointer.wait()
    return record.result(early_stopping)


def _check_resume(resume: bool, checkpointer: Any) -> None:
    check.boolean("resume", resume)
    if resume and checkpointer is None:
        raise ValueError("resume=True needs a checkpointer; pass checkpointer=Checkpointer(dir)")
    if not resume and checkpointer is not None and checkpointer.latest_step() is not None:
        raise ValueError(
            f"checkpointer's folder {checkpointer.directory!r} already holds checkpoints "
            f"(latest step {checkpointer.latest_step()}) and resume=False; pass resume=True to "
            "continue that run, or a new folder to start over"
        )


def _start(state: TrainState, early_stopping: EarlyStopping | None, checkpointer: Any,
           resume: bool, train_data: Any) -> Progress:  # fmt: skip
    """The record a run starts from: a fresh one, or the checkpointer's latest."""
    seed = train_data.seed if isinstance(train_data, Batches) else None
    fresh = Progress(state, start_early_stopping(early_stopping, state.params), seed=seed)
    if not resume or checkpointer.latest_step() is None:
        return fresh
    record = checkpointer.restore_progress(fresh)
    if record.seed is not None and record.seed != seed:
        raise ValueError(
            f"train_data.seed is {seed} but the checkpoint was trained with "
            f"seed {record.seed}; pass the same seed to resume the same data order"
        )
    return record


def _host(values: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in jax.device_get(values).items()}


@dataclasses.dataclass(frozen=True)
class _Loop:
    """The parts of one :func:`fit` call that stay fixed from epoch to epoch."""

    step: Callable[..., Any]  # compiled_step(train_step, skip)
    steps: Callable[..., Any]  # compiled_steps(train_step, skip)
    steps_per_call: int  # batches stacked into one call of `steps`
    train_step: StepFn
    data: Any
    limit: jax.Array  # int32 scalar, bad steps in a row that end the run
    checkpointer: Any
    progress: bool
    progress_every: int
    shardings: tuple  # of a batch and of a stack of batches, or (None, None)
    epochs: int
    eval_step: EvalFn | None
    eval_chunks: list  # (size, batch) pairs of the eval data
    early_stopping: EarlyStopping | None
    on_epoch_end: Callable[[dict[str, Any]], None] | None

    def run_epoch(self, record: Progress) -> Progress:
        """Train ``record.epoch`` (from ``record.batch`` on), evaluate, judge, save."""
        began, epoch = time.perf_counter(), record.epoch
        state, totals = self.train_epoch(record)
        row = {"epoch": epoch, "step": int(state.step), **_host(mean_row(totals))}
        if self.eval_step is not None:
            row.update(_host(evaluate(self.eval_step, state, self.eval_chunks)))
        row["time"] = time.perf_counter() - began
        es_state = update_early_stopping(self.early_stopping, record.early_stopping_state,
                                         row, epoch, state.params)  # fmt: skip
        record = record.replace(
            state=state, early_stopping_state=es_state, history=(*record.history, row),
            epoch=epoch + 1, batch=0, skipped=record.skipped + int(totals.skipped),
            totals=None, source=None, stop_reason=stop_reason(totals.bad, self.limit, es_state),
        )  # fmt: skip
        if self.checkpointer is not None and self.checkpointer.should_save(int(state.step), epoch):
            self.checkpointer.save_progress(record, row)
        if self.on_epoch_end is not None:
            self.on_epoch_end(row)
        return record

    def train_epoch(self, record: Progress) -> tuple[TrainState, EpochTotals]:
        """Run one epoch from ``record.batch`` on; return the state and the epoch's totals."""
        state, index, epoch = record.state, record.batch, record.epoch
        totals = totals_from_json(record.totals) if record.totals is not None else None
        items = epoch_items(self.data, epoch, index, record.source if index else None,
                            self.steps_per_call)  # fmt: skip
        items = prefetch(items, self.shardings)
        bar = _bar(self.progress, steps_per_epoch(self.data), index, epoch, self.epochs)
        shown, pending, limit = None, None, int(self.limit)  # read once, not per refresh
        for count, batch, source_state in items:
            if pending is not None:  # a step save, now known not to be the epoch's last
                self.checkpointer.save_progress(pending.replace(state=state))
                pending = None
            if totals is None:
                totals = zero_totals(metric_names(self.train_step, state, _one(batch, count)))
            step = self.step if count == 1 else self.steps
            state, totals = step(state, totals, self.limit, batch)
            index += count
            if bar is not None:
                bar.update(count)
            if index // self.progress_every > (index - count) // self.progress_every:
                if _refresh(bar, shown, limit):
                    break  # the run is over: the steps since changed nothing
                shown = _fetch(totals)
            if self._step_save_due(state):
                pending = record.replace(batch=index, totals=totals_to_json(totals),
                                         source=source_state)  # fmt: skip
        if bar is not None:
            bar.close()
        if totals is None:
            raise ValueError(
                f"train_data gave no batches in epoch {epoch} (from batch {record.batch} on); "
                "a generator or iterator is used up after one epoch: pass a function "
                "epoch -> iterable that builds a new one, e.g. lambda epoch: make_batches(epoch)"
            )
        return state, totals

    def _step_save_due(self, state: TrainState) -> bool:
        every = self.checkpointer is not None and self.checkpointer.every_steps
        return bool(every) and self.checkpointer.should_save(int(state.step), None)


def _one(batch: Any, count: int) -> Any:
    """The shapes of one batch of an item of ``count`` (stacked when more than one)."""
    if count == 1:
        return batch
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), batch)


def _steps_per_call(steps_per_call: int, checkpointer: Any, stacked: Any, sharding: Any) -> int:
    """Batches per call: one where a stack cannot be used (saves on exact step numbers,
    a batch sharding that cannot be stacked)."""
    if checkpointer is not None and checkpointer.every_steps:
        return 1
    if sharding is not None and stacked is None:
        return 1
    return steps_per_call


def _bar(progress: bool, total: int | None, start: int, epoch: int, epochs: int) -> Any:
    """A tqdm bar, or None; tqdm is imported only when a bar is asked for."""
    if not progress:
        return None
    from tqdm.auto import tqdm  # noqa: PLC0415 - optional display

    return tqdm(total=total, initial=start, desc=f"epoch {epoch + 1}/{epochs}", leave=False)


def _refresh(bar: Any, shown: EpochTotals | None, limit: int) -> bool:
    """Show ``shown`` (totals whose copy to the host began a refresh earlier) if it has
    arrived, never waiting for it; return whether it says the run is over (``limit`` bad
    steps in a row). Totals not yet arrived are passed over: the next refresh shows newer
    ones, and the end of the epoch checks the count exactly."""
    if shown is None or not all(leaf.is_ready() for leaf in jax.tree.leaves(shown)):
        return False
    host = jax.device_get(shown)
    if bar is not None and int(host.good):
        good = int(host.good)
        bar.set_postfix({k: f"{float(v) / good:.4f}" for k, v in host.sums.items()})
    return int(host.bad) >= limit


def _fetch(totals: EpochTotals) -> EpochTotals:
    """Start copying ``totals`` to the host without waiting for them."""
    for leaf in jax.tree.leaves(totals):
        leaf.copy_to_host_async()
    return totals
