"""The whole training loop as one XLA program, for small data sets that fit on the device."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jopt.schedules._hyper import zero_count
from jopt.train._epoch import StepFn, accumulating_step, metric_names, zero_totals
from jopt.train._epoch_end import (
    EvalFn,
    eval_chunks,
    evaluate,
    mean_row,
    nonfinite_limit,
    should_stop,
    start_early_stopping,
    stop_reason,
    update_early_stopping,
    validate_fit,
)
from jopt.train._progress import FitResult, Progress
from jopt.train._state import TrainState
from jopt.train.data import Batches, epoch_permutation, take_batches
from jopt.train.early_stopping import EarlyStopping


def fit_compiled(
    state: TrainState,
    train_step: StepFn,
    train_data: Batches,
    *,
    epochs: int,
    eval_step: EvalFn | None = None,
    eval_data: Any = None,
    early_stopping: EarlyStopping | None = None,
    skip_nonfinite: bool = True,
    max_nonfinite: int | None = 10,
) -> FitResult:
    """:func:`fit`, compiled: steps, evaluation and early stopping in one ``lax.while_loop``.

    Epochs are a ``while_loop`` (so early stopping ends the program), the batches
    of an epoch a ``lax.scan`` over the permutation :func:`fit` uses, then the
    smaller last batch. Same arguments and result as :func:`fit` (no progress bar,
    checkpoints or ``time`` column); meant for in-memory data sets small enough
    to gather on the device every epoch.
    """
    validate_fit(state, train_step, epochs, train_data, eval_step, eval_data, max_nonfinite,
                 skip_nonfinite)  # fmt: skip
    if not isinstance(train_data, Batches):
        raise TypeError(
            f"fit_compiled's train_data must be a jopt.train.Batches (arrays it can gather on "
            f"the device), got {type(train_data).__name__}; use fit for other data sources"
        )
    limit = nonfinite_limit(max_nonfinite)
    chunks = eval_chunks(eval_data) if eval_step is not None else []
    epoch_body = _EpochBody(train_step, train_data, skip_nonfinite, limit, state,
                             lambda s: evaluate(eval_step, s, chunks), early_stopping)  # fmt: skip

    def running(carry):
        _, bad, _, es_state, epoch, _ = carry
        return (epoch < epochs) & ~should_stop(bad, limit, es_state)

    def run(state):
        rows = {k: jnp.full([epochs], jnp.nan, jnp.float32)
                for k in jax.eval_shape(epoch_body.row, state)}  # fmt: skip
        zero = zero_count()
        carry = (state, zero, zero, start_early_stopping(early_stopping, state.params), zero, rows)
        return jax.lax.while_loop(running, epoch_body, carry)

    state, bad, skipped, es_state, ran, rows = jax.jit(run)(state)
    reason = stop_reason(bad, limit, es_state)
    history = _history(rows, int(ran))
    record = Progress(state, es_state, history, int(ran), skipped=int(skipped), stop_reason=reason)
    return record.result(early_stopping)


def _history(rows: dict[str, jax.Array], ran: int) -> tuple[dict[str, Any], ...]:
    columns = {k: np.asarray(v) for k, v in rows.items()}
    return tuple(
        {"epoch": e, "step": int(columns["step"][e]),
         **{k: float(v[e]) for k, v in columns.items() if k != "step"}}
        for e in range(ran)
    )  # fmt: skip


class _EpochBody:
    """One epoch of :func:`fit_compiled`'s ``while_loop``: the scan over its batches, then
    the row, evaluation and early stopping of :mod:`jopt.train._epoch_end`."""

    def __init__(self, train_step, train_data, skip, limit, state, evaluate_fn, early_stopping):
        self.data = jax.tree.map(jnp.asarray, train_data.data)
        self.batches, self.limit, self.evaluate = train_data, limit, evaluate_fn
        self.early_stopping = early_stopping
        self.step = accumulating_step(train_step, skip)
        first = take_batches(self.data, jnp.arange(train_data.size), 0, 1, train_data.batch_size)
        self.names = metric_names(train_step, state, first)

    def row(self, state: TrainState, totals: Any = None) -> dict[str, jax.Array]:
        """The epoch's row (shapes only when traced without totals)."""
        totals = zero_totals(self.names) if totals is None else totals
        row = {**mean_row(totals), **self.evaluate(state)}
        return {**row, "step": state.step.astype(jnp.float32)}

    def _one(self, carry, batch):
        state, totals = carry
        return self.step(state, totals, self.limit, batch), None

    def __call__(self, carry):
        state, bad, skipped, es_state, epoch, rows = carry
        data = self.batches
        order = (epoch_permutation(data.seed, epoch, data.size) if data.shuffle
                 else jnp.arange(data.size))  # fmt: skip
        full = data.size // data.batch_size
        inner = (state, zero_totals(self.names)._replace(bad=bad))
        if full:
            stacked = take_batches(self.data, order, 0, full, data.batch_size)
            if full == 1:
                stacked = jax.tree.map(lambda x: x[None], stacked)
            inner, _ = jax.lax.scan(self._one, inner, stacked)
        if data.size % data.batch_size and not data.drop_remainder:
            inner, _ = self._one(inner, take_batches(self.data, order, full, 1, data.batch_size))
        state, totals = inner
        row = self.row(state, totals)
        es_state = update_early_stopping(self.early_stopping, es_state, row, epoch, state.params)
        rows = {k: rows[k].at[epoch].set(row[k]) for k in rows}
        return state, totals.bad, skipped + totals.skipped, es_state, epoch + 1, rows
