"""The end of an epoch, once for :func:`~jopt.train.fit` and
:func:`~jopt.train.fit_compiled`: the row of means, evaluation, early stopping and the
stop rule. Everything is ``jnp``: ``fit`` runs it eagerly, ``fit_compiled`` in its program.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jopt import _check as check
from jopt.train._epoch import EpochTotals, StepFn
from jopt.train._sources import check_source
from jopt.train._state import TrainState
from jopt.train.data import Batches, num_examples, take_batches
from jopt.train.early_stopping import EarlyStopping

EvalFn = Callable[[TrainState, Any], Mapping[str, Any]]


def validate_fit(state: TrainState, train_step: StepFn, epochs: int, train_data: Any,
                 eval_step: EvalFn | None, eval_data: Any, max_nonfinite: int | None,
                 skip_nonfinite: bool) -> None:  # fmt: skip
    """The arguments :func:`fit` and :func:`fit_compiled` share."""
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


def nonfinite_limit(max_nonfinite: int | None) -> jax.Array:
    """Bad steps in a row that end a run, as an int32 scalar (None: never)."""
    return jnp.asarray(np.iinfo(np.int32).max if max_nonfinite is None else max_nonfinite,
                       jnp.int32)  # fmt: skip


def eval_chunks(eval_data: Any) -> list[tuple[int, Any]]:
    """(size, batch) pairs in a fixed order: a Batches in order, or the whole pytree."""
    if not isinstance(eval_data, Batches):
        return [(num_examples(eval_data), eval_data)]
    arrays, n, size = jax.tree.map(np.asarray, eval_data.data), eval_data.size, eval_data.batch_size
    order = np.arange(n)
    return [(min(size, n - i * size), take_batches(arrays, order, i, 1, size))
            for i in range(-(-n // size))]  # fmt: skip


def evaluate(eval_step: EvalFn, state: TrainState, chunks: list[tuple[int, Any]]) -> dict:
    """Example-weighted mean of the eval metrics over ``chunks``, keys prefixed ``val_``."""
    totals: dict[str, Any] = {}
    for size, batch in chunks:
        for key, value in eval_step(state, batch).items():
            totals[key] = totals.get(key, 0.0) + size * jnp.asarray(value, jnp.float32)
    count = sum(size for size, _ in chunks)
    return {f"val_{k}": v / count for k, v in totals.items()}


def mean_row(totals: EpochTotals) -> dict[str, jax.Array]:
    """The mean of each metric over the applied steps (NaN when none was)."""
    good = totals.good
    row = {
        k: jnp.where(good > 0, s / jnp.maximum(good, 1), jnp.nan) for k, s in totals.sums.items()
    }
    return row or {"loss": jnp.asarray(jnp.nan, jnp.float32)}


def start_early_stopping(early_stopping: EarlyStopping | None, params: Any) -> Any:
    """The early-stopping state before the first epoch, or None."""
    if early_stopping is None:
        return None
    return early_stopping.init(params if early_stopping.restore_best else None)


def update_early_stopping(early_stopping: EarlyStopping | None, es_state: Any,
                          row: Mapping[str, Any], epoch: Any, params: Any) -> Any:  # fmt: skip
    """The early-stopping state after the epoch whose row is ``row`` (None without it)."""
    if early_stopping is None:
        return es_state
    if early_stopping.monitor not in row:
        raise ValueError(
            f"early_stopping.monitor is {early_stopping.monitor!r}, which is not among the "
            f"metrics of an epoch {sorted(row)}; pass one of them (eval metrics carry 'val_')"
        )
    kept = params if early_stopping.restore_best else None
    return early_stopping.update(es_state, row[early_stopping.monitor], epoch, kept)


def should_stop(bad: Any, limit: Any, es_state: Any) -> jax.Array:
    """Whether the run ends after this epoch: ``limit`` bad steps in a row, or early stopping."""
    stopped = es_state.stopped if es_state is not None else jnp.asarray(False)
    return (bad >= limit) | stopped


def stop_reason(bad: Any, limit: Any, es_state: Any) -> str:
    """Why the run ended (the rule of :func:`should_stop`, read on the host)."""
    if int(bad) >= int(limit):
        return "nonfinite"
    if es_state is not None and bool(es_state.stopped):
        return "early_stopping"
    return "epochs"
