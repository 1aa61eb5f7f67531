"""The training loop: epochs of steps, evaluation, early stopping, checkpoints, history.

:func:`fit` runs on the host (progress bar, checkpoints, resumption);
:func:`fit_compiled` runs the same loop as one XLA program for small in-memory
data, and gives the same result. Both are built from the same pure pieces
(:mod:`jopt.train._epoch`'s guarded step and running totals,
:class:`~jopt.train.early_stopping.EarlyStopping`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jopt import _check as check
from jopt.train._epoch import (
    EpochTotals,
    StepFn,
    compiled_step,
    compiled_steps,
    epoch_row,
    metric_names,
    totals_from_json,
    totals_to_json,
    zero_totals,
)
from jopt.train._history import History
from jopt.train._sources import (
    check_source,
    epoch_items,
    prefetch,
    stacked_sharding,
    steps_per_epoch,
)
from jopt.train._state import TrainState
from jopt.train.data import Batches, num_examples
from jopt.train.early_stopping import EarlyStopping

EvalFn = Callable[[TrainState, Any], Mapping[str, Any]]


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What :func:`fit` and :func:`fit_compiled` return."""

    state: TrainState  # the final state (best params if early stopping restores them)
    history: History  # one row per epoch run
    early_stopping: Any  # the final EarlyStoppingState, or None
    stop_reason: str  # "epochs", "early_stopping" or "nonfinite"
    skipped_steps: int = 0  # bad steps (non-finite loss, params or state) not applied


def _validate(state, train_step, epochs, train_data, eval_step, eval_data, max_nonfinite,
              skip_nonfinite):  # fmt: skip
    check.train_state("state", state, TrainState)
    check.function("train_step", train_step, "jopt.train.make_train_step(loss_fn)")
    check.integer("epochs", epochs, 1)
    check_source("train_data", train_data)
    if (eval_step is None) != (eval_data is None):
        raise ValueError(
            "eval_step and eval_data must be given together, got "
            f"eval_step={'set' if eval_step else None} and eval_data="
            f"{'set' if eval_data is not None else None}; pass both to evaluate each epoch"
        )
    check.optional(check.function, "eval_step", eval_step, "jopt.train.make_eval_step(eval_fn)")
    check.optional(check.integer, "max_nonfinite", max_nonfinite, 1)
    check.boolean("skip_nonfinite", skip_nonfinite)


def _eval_chunks(eval_data: Any) -> list[tuple[int, Any]]:
    """(size, batch) pairs in a fixed order: a Batches in order, or the whole pytree."""
    if isinstance(eval_data, Batches):
        n, size = eval_data.size, eval_data.batch_size
        return [
            (min(size, n - s), jax.tree.map(lambda x, s=s: np.asarray(x)[s : s + size],
                                            eval_data.data))
            for s in range(0, n, size)
        ]  # fmt: skip
    return [(num_examples(eval_data), eval_data)]


def _evaluate(eval_step: EvalFn, state: TrainState, eval_data: Any) -> dict[str, float]:
    """Example-weighted mean of the eval metrics, keys prefixed with ``val_``."""
    totals: dict[str, Any] = {}
    count = 0
    for size, batch in _eval_chunks(eval_data):
        for key, value in eval_step(state, batch).items():
            totals[key] = totals.get(key, 0.0) + size * jnp.asarray(value, jnp.float32)
        count += size
    return {f"val_{k}": float(v / count) for k, v in totals.items()}


def _monitored(early_stopping: EarlyStopping, row: Mapping[str, Any]) -> Any:
    if early_stopping.monitor not in row:
        raise ValueError(
            f"early_stopping.monitor is {early_stopping.monitor!r}, which is not among the "
            f"metrics of an epoch {sorted(row)}; pass one of them (eval metrics carry 'val_')"
        )
    return row[early_stopping.monitor]


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
    batch, one for a stack of ``steps_per_call`` batches) and reused by later calls.
    Inside an epoch nothing waits on the device: the metrics are summed on the device by
    the compiled step, batches are put on the device ahead of use, and the progress bar
    shows values fetched ``progress_every`` steps earlier.

    A *bad* step (a NaN or infinite loss or gradient) is not applied
    (``skip_nonfinite``: the state is unchanged) and is counted in
    :attr:`FitResult.skipped_steps`. A step from :func:`~jopt.train.make_train_step` is judged
    before its update, which then runs in place on the donated state; a step written
    by hand is judged after it ran, by its loss and new params and optimizer state,
    which keeps a second copy of the state alive for the choice. After
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
    _validate(state, train_step, epochs, train_data, eval_step, eval_data, max_nonfinite,
              skip_nonfinite)  # fmt: skip
    check.boolean("progress", progress)
    check.integer("progress_every", progress_every, 1)
    check.integer("steps_per_call", steps_per_call, 1)
    _check_resume(resume, checkpointer)
    es_state = None
    if early_stopping is not None:
        es_state = early_stopping.init(state.params if early_stopping.restore_best else None)
    run = _Run(state, es_state, History(), 0, 0, {})
    if resume and checkpointer.latest_step() is not None:
        run = _resumed(checkpointer, state, es_state, train_data)
    limit = np.iinfo(np.int32).max if max_nonfinite is None else max_nonfinite
    stacked = stacked_sharding(batch_sharding)
    loop = _Loop(compiled_step(train_step, skip_nonfinite),
                 compiled_steps(train_step, skip_nonfinite),
                 _steps_per_call(steps_per_call, checkpointer, stacked, batch_sharding),
                 train_step, train_data, jnp.asarray(limit, jnp.int32), checkpointer, progress,
                 progress_every, (batch_sharding, stacked), epochs)  # fmt: skip
    stop_reason = "epochs"
    if run.es_state is not None and bool(run.es_state.stopped):
        stop_reason = "early_stopping"
    skipped = run.loop.get("skipped", 0)
    try:
        for epoch in range(run.epoch if stop_reason == "epochs" else epochs, epochs):
            began = time.perf_counter()
            state, totals = loop.train_epoch(run, epoch, skipped)
            run = _Run(state, run.es_state, run.history, epoch + 1, 0, {})
            row = {"epoch": epoch, "step": int(state.step), **epoch_row(totals)}
            skipped += int(totals.skipped)
            if int(totals.bad) >= limit:
                stop_reason = "nonfinite"
            if eval_step is not None:
                row.update(_evaluate(eval_step, state, eval_data))
            row["time"] = time.perf_counter() - began
            run.history.append(row)
            if early_stopping is not None:
                run = _stop_early(run, early_stopping, row, epoch)
                if bool(run.es_state.stopped) and stop_reason == "epochs":
                    stop_reason = "early_stopping"
            if checkpointer is not None and checkpointer.should_save(int(state.step), epoch):
                loop.save(run, epoch + 1, 0, {"skipped": skipped}, row)
            if on_epoch_end is not None:
                on_epoch_end(row)
            if stop_reason != "epochs":
                break
    finally:  # an error or interrupt leaves the last save whole, not half-written
        if checkpointer is not None:
            checkpointer.wait()
    return _finish(run.state, run.history, early_stopping, run.es_state, stop_reason, skipped)


@dataclasses.dataclass(frozen=True)
class _Run:
    """Where a run stands: what a checkpoint holds and a resume continues from."""

    state: TrainState
    es_state: Any
    history: History
    epoch: int  # the epoch to run next
    batch: int  # the batch of that epoch to start from
    loop: dict[str, Any]  # the running totals, the data source's state, the skipped count


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


def _resumed(checkpointer: Any, state: TrainState, es_state: Any, train_data: Any) -> _Run:
    restored = checkpointer.restore(state, early_stopping=es_state)
    seed = train_data.seed if isinstance(train_data, Batches) else None
    if restored.seed is not None and restored.seed != seed:
        raise ValueError(
            f"train_data.seed is {seed} but the checkpoint was trained with "
            f"seed {restored.seed}; pass the same seed to resume the same data order"
        )
    return _Run(restored.state, restored.early_stopping, History(restored.history),
                restored.epoch, restored.batch, restored.loop)  # fmt: skip


def _stop_early(run: _Run, early_stopping: EarlyStopping, row: dict[str, Any], epoch: int) -> _Run:
    params = run.state.params if early_stopping.restore_best else None
    es_state = early_stopping.update(run.es_state, _monitored(early_stopping, row), epoch, params)
    return dataclasses.replace(run, es_state=es_state)


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

    def train_epoch(self, run: _Run, epoch: int, skipped: int) -> tuple[TrainState, EpochTotals]:
        """Run one epoch from ``run.batch`` on; return the state and the epoch's totals."""
        state, index = run.state, run.batch
        totals = totals_from_json(run.loop["totals"]) if "totals" in run.loop else None
        saved = run.loop.get("source") if index else None
        items = epoch_items(self.data, epoch, index, saved, self.steps_per_call)
        items = prefetch(items, self.shardings)
        bar = _bar(self.progress, steps_per_epoch(self.data), index, epoch, self.epochs)
        shown, pending, limit = None, None, int(self.limit)  # read once, not per refresh
        for count, batch, source_state in items:
            if pending is not None:  # a step save, now known not to be the epoch's last
                self.save(dataclasses.replace(run, state=state), epoch, *pending)
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
                loop = {"totals": totals_to_json(totals), "source": source_state,
                        "skipped": skipped + int(totals.skipped)}  # fmt: skip
                pending = (index, loop)
        if bar is not None:
            bar.close()
        if totals is None:
            raise ValueError(
                f"train_data gave no batches in epoch {epoch} (from batch {run.batch} on); "
                "a generator or iterator is used up after one epoch: pass a function "
                "epoch -> iterable that builds a new one, e.g. lambda epoch: make_batches(epoch)"
            )
        return state, totals

    def _step_save_due(self, state: TrainState) -> bool:
        every = self.checkpointer is not None and self.checkpointer.every_steps
        return bool(every) and self.checkpointer.should_save(int(state.step), None)

    def save(self, run: _Run, epoch: int, batch: int, loop: dict[str, Any], row=None) -> None:
        """Checkpoint ``run`` to continue at ``(epoch, batch)``."""
        seed = self.data.seed if isinstance(self.data, Batches) else None
        self.checkpointer.save(run.state, early_stopping=run.es_state, epoch=epoch, batch=batch,
                               seed=seed, history=run.history.rows, metrics=row,
                               loop=loop)  # fmt: skip


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


def _finish(state, history, early_stopping, es_state, stop_reason, skipped=0) -> FitResult:
    if early_stopping is not None and early_stopping.restore_best and int(es_state.best_step) >= 0:
        state = state.replace(params=es_state.best_params)
    return FitResult(state, history, es_state, stop_reason, skipped)
