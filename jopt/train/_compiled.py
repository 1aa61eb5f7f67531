"""The whole training loop as one XLA program, for small data sets that fit on the device."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jopt.schedules._hyper import zero_count
from jopt.train._epoch import StepFn, accumulating_step, metric_names, zero_totals
from jopt.train._history import History
from jopt.train._loop import EvalFn, FitResult, _eval_chunks, _finish, _monitored, _validate
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
    _validate(state, train_step, epochs, train_data, eval_step, eval_data, max_nonfinite,
              skip_nonfinite)  # fmt: skip
    if not isinstance(train_data, Batches):
        raise TypeError(
            f"fit_compiled's train_data must be a jopt.train.Batches (arrays it can gather on "
            f"the device), got {type(train_data).__name__}; use fit for other data sources"
        )
    data = jax.tree.map(jnp.asarray, train_data.data)
    size, batch_size = train_data.size, train_data.batch_size
    full = size // batch_size
    has_rest = size % batch_size > 0 and not train_data.drop_remainder
    guarded = accumulating_step(train_step, skip_nonfinite)
    limit = jnp.asarray(
        max_nonfinite if max_nonfinite is not None else np.iinfo(np.int32).max, jnp.int32
    )
    chunks = _eval_chunks(eval_data) if eval_step is not None else []
    names = metric_names(train_step, state, jax.tree.map(lambda x: x[:batch_size], data))

    def one_step(carry, batch):
        state, totals = carry
        return guarded(state, totals, limit, batch), None

    def evaluate(state):
        totals = None
        for n, batch in chunks:
            metrics = eval_step(state, batch)
            metrics = {k: n * jnp.asarray(v, jnp.float32) for k, v in metrics.items()}
            totals = metrics if totals is None else {k: totals[k] + metrics[k] for k in totals}
        count = sum(n for n, _ in chunks)
        return {f"val_{k}": v / count for k, v in (totals or {}).items()}

    def epoch_body(carry):
        state, bad, skipped, es_state, epoch, rows = carry
        order = (epoch_permutation(train_data.seed, epoch, size) if train_data.shuffle
                 else jnp.arange(size))  # fmt: skip
        stacked, rest = _split(data, order, batch_size, full)
        inner = (state, zero_totals(names)._replace(bad=bad))
        inner, _ = jax.lax.scan(one_step, inner, stacked)
        if has_rest:
            inner, _ = one_step(inner, rest)
        state, totals = inner
        bad, skipped = totals.bad, skipped + totals.skipped
        good = totals.good
        row = {k: jnp.where(good > 0, s / good, jnp.nan) for k, s in totals.sums.items()}
        row.update(evaluate(state))
        row["step"] = state.step.astype(jnp.float32)
        if early_stopping is not None:
            params = state.params if early_stopping.restore_best else None
            monitored = _monitored(early_stopping, row)
            es_state = early_stopping.update(es_state, monitored, epoch, params)
        rows = {k: rows[k].at[epoch].set(row[k]) for k in rows}
        return state, bad, skipped, es_state, epoch + 1, rows

    def done(carry):
        _, bad, _, es_state, epoch, _ = carry
        stopped = es_state.stopped if es_state is not None else jnp.asarray(False)
        return (epoch < epochs) & ~stopped & (bad < limit)

    def run(state):
        es_state = None
        if early_stopping is not None:
            es_state = early_stopping.init(state.params if early_stopping.restore_best else None)
        keys = [*(names or ["loss"]), *jax.eval_shape(evaluate, state), "step"]
        rows = {k: jnp.full([epochs], jnp.nan, jnp.float32) for k in keys}
        zero = zero_count()
        carry = (state, zero, zero, es_state, zero, rows)
        return jax.lax.while_loop(done, epoch_body, carry)

    state, bad, skipped, es_state, ran, rows = jax.jit(run)(state)
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
    return _finish(state, history, early_stopping, es_state, stop_reason, int(skipped))
