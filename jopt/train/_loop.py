"""The training loop: epochs of steps, evaluation, early stopping, checkpoints, history.

:func:`fit` runs on the host (progress bar, checkpoints, resumption);
:func:`fit_compiled` runs the same loop as one XLA program for small in-memory
data, and gives the same result. Both are built from the same pure pieces
(:func:`guard_nonfinite`, :class:`~jopt.train.early_stopping.EarlyStopping`).
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
from jopt.train._history import History
from jopt.train._state import TrainState
from jopt.train.data import Batches, num_examples
from jopt.train.early_stopping import EarlyStopping

StepFn = Callable[[TrainState, Any], tuple[TrainState, dict[str, Any]]]
EvalFn = Callable[[TrainState, Any], Mapping[str, Any]]


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What :func:`fit` and :func:`fit_compiled` return."""

    state: TrainState  # the final state (best params if early stopping restores them)
    history: History  # one row per epoch run
    early_stopping: Any  # the final EarlyStoppingState, or None
    stop_reason: str  # "epochs", "early_stopping" or "nonfinite"


def guard_nonfinite(train_step: StepFn, skip: bool = True) -> Callable[..., Any]:
    """Wrap ``train_step`` as ``(state, bad, batch) -> (state, bad, metrics)``.

    ``bad`` counts consecutive steps with a non-finite loss. With ``skip``, such a
    step is not applied: the state comes back unchanged.
    """

    def guarded(state, bad, batch):
        new_state, metrics = train_step(state, batch)
        finite = jnp.isfinite(metrics["loss"])
        if skip:
            new_state = jax.lax.cond(finite, lambda: new_state, lambda: state)
        return new_state, jnp.where(finite, 0, bad + 1).astype(jnp.int32), metrics

    return guarded


def _validate(epochs, train_data, eval_step, eval_data, max_nonfinite, skip_nonfinite):
    check.integer("epochs", epochs, 1)
    if not isinstance(train_data, Batches):
        raise TypeError(
            f"train_data must be a jopt.train.Batches, got {type(train_data).__name__}; "
            "wrap your arrays: Batches({'x': x, 'y': y}, batch_size=32, seed=0)"
        )
    if (eval_step is None) != (eval_data is None):
        raise ValueError(
            "eval_step and eval_data must be given together, got "
            f"eval_step={'set' if eval_step else None} and eval_data="
            f"{'set' if eval_data is not None else None}; pass both to evaluate each epoch"
        )
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
    train_data: Batches,
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
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
) -> FitResult:
    """Train for ``epochs`` epochs, evaluating, stopping early and checkpointing as asked.

    Each epoch runs ``train_step`` (e.g. :func:`jopt.train.make_train_step`) over
    ``train_data.epoch(epoch)``, then ``eval_step`` over ``eval_data``; the row
    ``{"epoch", "step", <mean train metrics>, "val_<eval metrics>", "time"}`` is
    appended to the history and handed to ``on_epoch_end``.

    A step whose loss is not finite is skipped (``skip_nonfinite``, the state is
    unchanged); after ``max_nonfinite`` of them in a row training stops (None:
    never). With ``early_stopping.restore_best`` the returned params are the best
    ones (Keras semantics: also when training ran to the end).

    Args:
      state: the initial :class:`~jopt.train.TrainState`.
      train_step: ``step(state, batch) -> (state, metrics)`` with ``metrics["loss"]``.
      train_data: a :class:`~jopt.train.data.Batches`; its seed fixes the order.
      epochs: total number of epochs (a resumed run continues up to it).
      eval_step: ``evaluate(state, batch) -> metrics`` (e.g. :func:`make_eval_step`).
      eval_data: a Batches or a pytree of arrays evaluated as one batch.
      early_stopping: an :class:`~jopt.train.early_stopping.EarlyStopping`.
      checkpointer: a :class:`~jopt.train.checkpoint.Checkpointer`.
      resume: continue from the checkpointer's latest checkpoint, if any.
      skip_nonfinite: do not apply steps whose loss is NaN or infinite.
      max_nonfinite: stop after this many non-finite losses in a row (None: never).
      progress: show a tqdm progress bar.
      on_epoch_end: called with each epoch's row (e.g. to print it).
    """
    _validate(epochs, train_data, eval_step, eval_data, max_nonfinite, skip_nonfinite)
    if resume and checkpointer is None:
        raise ValueError("resume=True needs a checkpointer; pass checkpointer=Checkpointer(dir)")
    if not resume and checkpointer is not None and checkpointer.latest_step() is not None:
        raise ValueError(
            f"checkpointer's folder {checkpointer.directory!r} already holds checkpoints "
            f"(latest step {checkpointer.latest_step()}) and resume=False; pass resume=True to "
            "continue that run, or a new folder to start over"
        )
    from tqdm.auto import tqdm

    es_state = None
    if early_stopping is not None:
        es_state = early_stopping.init(state.params if early_stopping.restore_best else None)
    history, start_epoch, start_batch = History(), 0, 0
    if resume and checkpointer.latest_step() is not None:
        restored = checkpointer.restore(state, early_stopping=es_state)
        if restored.seed is not None and restored.seed != train_data.seed:
            raise ValueError(
                f"train_data.seed is {train_data.seed} but the checkpoint was trained with "
                f"seed {restored.seed}; pass the same seed to resume the same data order"
            )
        state, es_state = restored.state, restored.early_stopping
        history = History(restored.history)
        start_epoch, start_batch = restored.epoch, restored.batch
    step = jax.jit(guard_nonfinite(train_step, skip_nonfinite), donate_argnums=(0,))
    bad = jnp.zeros([], jnp.int32)
    stop_reason = "epochs"
    if es_state is not None and bool(es_state.stopped):
        start_epoch, stop_reason = epochs, "early_stopping"

    def save(epoch, batch, row=None):
        checkpointer.save(state, early_stopping=es_state, epoch=epoch, batch=batch,
                          seed=train_data.seed, history=history.rows, metrics=row)  # fmt: skip

    for epoch in range(start_epoch, epochs):
        began, sums, finite_steps = time.perf_counter(), {}, 0
        bar = tqdm(total=len(train_data), initial=start_batch, disable=not progress,
                   desc=f"epoch {epoch + 1}/{epochs}", leave=False)  # fmt: skip
        for index, batch in enumerate(train_data.epoch(epoch, start_batch), start_batch):
            state, bad, metrics = step(state, bad, batch)
            if bool(jnp.isfinite(metrics["loss"])):
                finite_steps += 1
                for key, value in metrics.items():
                    if jnp.ndim(value) == 0:
                        sums[key] = sums.get(key, 0.0) + value
            bar.update(1)
            if finite_steps and index % 10 == 0:
                bar.set_postfix({k: f"{float(v) / finite_steps:.4f}" for k, v in sums.items()})
            if max_nonfinite is not None and int(bad) >= max_nonfinite:
                stop_reason = "nonfinite"
                break
            last = index + 1 == len(train_data)
            if checkpointer is not None and checkpointer.every_steps and not last:
                if checkpointer.should_save(int(state.step), None):
                    save(epoch, index + 1)
        bar.close()
        start_batch = 0
        row = {"epoch": epoch, "step": int(state.step)}
        row.update({k: float(v) / finite_steps if finite_steps else float("nan")
                    for k, v in sums.items()} or {"loss": float("nan")})  # fmt: skip
        if eval_step is not None:
            row.update(_evaluate(eval_step, state, eval_data))
        row["time"] = time.perf_counter() - began
        history.append(row)
        if early_stopping is not None:
            params = state.params if early_stopping.restore_best else None
            monitored = _monitored(early_stopping, row)
            es_state = early_stopping.update(es_state, monitored, epoch, params)
            if bool(es_state.stopped) and stop_reason == "epochs":
                stop_reason = "early_stopping"
        if checkpointer is not None and checkpointer.should_save(int(state.step), epoch):
            save(epoch + 1, 0, row)
        if on_epoch_end is not None:
            on_epoch_end(row)
        if stop_reason != "epochs":
            break
    if checkpointer is not None:
        checkpointer.wait()
    return _finish(state, history, early_stopping, es_state, stop_reason)


def _finish(state, history, early_stopping, es_state, stop_reason) -> FitResult:
    if early_stopping is not None and early_stopping.restore_best and int(es_state.best_step) >= 0:
        state = state.replace(params=es_state.best_params)
    return FitResult(state, history, es_state, stop_reason)
