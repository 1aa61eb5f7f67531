"""The whole training loop as one XLA program, for small data sets that fit on the device."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jopt.train._history import History
from jopt.train._loop import (
    EvalFn,
    FitResult,
    StepFn,
    _eval_chunks,
    _finish,
    _monitored,
    _validate,
    guard_nonfinite,
)
from jopt.train._state import TrainState
from jopt.train.data import Batches, epoch_permutation
from jopt.train.early_stopping import EarlyStopping


def _split(data: Any, order: jax.Array, batch_size: int, full: int) -> tuple[Any, Any]:
    """Gather ``data`` in ``order``; return (full batches stacked, the remainder batch)."""
    shuffled = jax.tree.map(lambda x: x[order], data)
    stacked = jax.tree.map(
        lambda x: x[: full * batch_size].reshape(full, batch_size, *x.shape[1:]), shuffled
    )
    rest = jax.tree.map(lambda x: x[full * batch_size :], shuffled)
    return stacked, rest


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
    _validate(epochs, train_data, eval_step, eval_data, max_nonfinite, skip_nonfinite)
    data = jax.tree.map(jnp.asarray, train_data.data)
    size, batch_size = train_data.size, train_data.batch_size
    full = size // batch_size
    has_rest = size % batch_size > 0 and not train_data.drop_remainder
    guarded = guard_nonfinite(train_step, skip_nonfinite)
    limit = max_nonfinite if max_nonfinite is not None else np.iinfo(np.int32).max
    chunks = _eval_chunks(eval_data) if eval_step is not None else []

    def train_metrics_like():
        batch = jax.tree.map(lambda x: x[:batch_size], data)
        metrics = jax.eval_shape(guarded, state, jnp.zeros([], jnp.int32), batch)[2]
        return {k: jnp.zeros([], jnp.float32) for k, v in metrics.items() if v.ndim == 0}

    def one_step(carry, batch):
        state, bad, sums, count = carry
        halted = bad >= limit

        def run(state, bad, sums, count):
            state, bad, metrics = guarded(state, bad, batch)
            finite = jnp.isfinite(metrics["loss"])
            sums = {k: s + jnp.where(finite, metrics[k], 0.0) for k, s in sums.items()}
            return state, bad, sums, count + finite

        carry = jax.lax.cond(halted, lambda *c: c, run, state, bad, sums, count)
        return carry, None

    def evaluate(state):
        totals = None
        for n, batch in chunks:
            metrics = eval_step(state, batch)
            metrics = {k: n * jnp.asarray(v, jnp.float32) for k, v in metrics.items()}
            totals = metrics if totals is None else {k: totals[k] + metrics[k] for k in totals}
        count = sum(n for n, _ in chunks)
        return {f"val_{k}": v / count for k, v in (totals or {}).items()}

    def epoch_body(carry):
        state, bad, es_state, epoch, rows = carry
        order = (epoch_permutation(train_data.seed, epoch, size) if train_data.shuffle
                 else jnp.arange(size))  # fmt: skip
        stacked, rest = _split(data, order, batch_size, full)
        inner = (state, bad, train_metrics_like(), jnp.zeros([], jnp.int32))
        inner, _ = jax.lax.scan(one_step, inner, stacked)
        if has_rest:
            inner, _ = one_step(inner, rest)
        state, bad, sums, count = inner
        row = {k: jnp.where(count > 0, s / count, jnp.nan) for k, s in sums.items()}
        row.update(evaluate(state))
        row["step"] = state.step.astype(jnp.float32)
        if early_stopping is not None:
            params = state.params if early_stopping.restore_best else None
            monitored = _monitored(early_stopping, row)
            es_state = early_stopping.update(es_state, monitored, epoch, params)
        rows = {k: rows[k].at[epoch].set(row[k]) for k in rows}
        return state, bad, es_state, epoch + 1, rows

    def done(carry):
        _, bad, es_state, epoch, _ = carry
        stopped = es_state.stopped if es_state is not None else jnp.asarray(False)
        return (epoch < epochs) & ~stopped & (bad < limit)

    def run(state):
        es_state = None
        if early_stopping is not None:
            es_state = early_stopping.init(state.params if early_stopping.restore_best else None)
        keys = [*train_metrics_like(), *jax.eval_shape(evaluate, state), "step"]
        rows = {k: jnp.full([epochs], jnp.nan, jnp.float32) for k in keys}
        carry = (state, jnp.zeros([], jnp.int32), es_state, jnp.zeros([], jnp.int32), rows)
        return jax.lax.while_loop(done, epoch_body, carry)

    state, bad, es_state, ran, rows = jax.jit(run)(state)
    columns = {k: np.asarray(v) for k, v in rows.items()}
    history = History(
        {"epoch": e, "step": int(columns["step"][e]),
         **{k: float(v[e]) for k, v in columns.items() if k != "step"}}
        for e in range(int(ran))
    )  # fmt: skip
    stop_reason = "epochs"
    if max_nonfinite is not None and int(bad) >= max_nonfinite:
        stop_reason = "nonfinite"
    elif es_state is not None and bool(es_state.stopped):
        stop_reason = "early_stopping"
    return _finish(state, history, early_stopping, es_state, stop_reason)
