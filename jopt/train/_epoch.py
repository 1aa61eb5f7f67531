"""The pure body of an epoch, shared by :func:`~jopt.train.fit` and
:func:`~jopt.train.fit_compiled`: one guarded step and the running totals it adds to.

A step is *bad* when its loss or its gradient holds an inf or a NaN (for a step that
:func:`~jopt.train.make_train_step` did not build, which jopt cannot look into: its
loss, new parameters or new optimizer state). A bad step is not applied, and counted.
Everything here is ``jnp``, so :func:`fit` runs it as one jitted call per batch (the
totals stay on the device: no host synchronisation inside an epoch) and
:func:`fit_compiled` inside ``lax.scan``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree
from jopt.schedules._hyper import zero_count
from jopt.train._state import TrainState

StepFn = Callable[[TrainState, Any], tuple[TrainState, dict[str, Any]]]


class EpochTotals(NamedTuple):
    """Running totals of an epoch, kept on the device."""

    sums: dict[str, jax.Array]  # float32 scalars: each scalar metric summed over good steps
    good: jax.Array  # int32 scalar, steps applied
    bad: jax.Array  # int32 scalar, bad steps in a row (reset by a good one)
    skipped: jax.Array  # int32 scalar, bad steps in this epoch


def zero_totals(metric_names: Any) -> EpochTotals:
    """Totals before the first step of an epoch."""
    zero = zero_count()
    return EpochTotals({k: jnp.zeros([], jnp.float32) for k in metric_names}, zero, zero, zero)


def totals_from_json(saved: Mapping[str, Any]) -> EpochTotals:
    """Totals saved mid-epoch by :func:`totals_to_json` (a resumed epoch continues them)."""
    sums = {k: jnp.asarray(v, jnp.float32) for k, v in saved["sums"].items()}
    ints = (jnp.asarray(saved[k], jnp.int32) for k in ("good", "bad", "skipped"))
    return EpochTotals(sums, *ints)


def totals_to_json(totals: EpochTotals) -> dict[str, Any]:
    """The totals as plain numbers, for a checkpoint's ``loop`` record."""
    host = jax.device_get(totals)
    return {
        "sums": {k: float(v) for k, v in host.sums.items()},
        "good": int(host.good), "bad": int(host.bad), "skipped": int(host.skipped),
    }  # fmt: skip


_NAMES_SEEN: dict[tuple, list[str]] = {}  # the last few metric_names answers


def metric_names(train_step: StepFn, state: TrainState, batch: Any) -> list[str]:
    """The scalar metrics ``train_step`` reports (traced, not run); checks ``"loss"``.

    Remembered per step, state structure and batch shapes: tracing a large model's step
    again would cost each later :func:`fit` call a noticeable part of an epoch.
    """
    batch_leaves, batch_def = jax.tree.flatten(batch)
    key = (train_step, jax.tree.structure(state), batch_def,
           tuple((jnp.shape(x), jnp.result_type(x)) for x in batch_leaves))  # fmt: skip
    if key not in _NAMES_SEEN:
        metrics = jax.eval_shape(train_step, state, batch)[1]
        check_metrics(metrics)
        if len(_NAMES_SEEN) >= 64:
            del _NAMES_SEEN[next(iter(_NAMES_SEEN))]
        _NAMES_SEEN[key] = [k for k, v in metrics.items() if v.ndim == 0]
    return _NAMES_SEEN[key]


def check_metrics(metrics: Any) -> None:
    """A step's metrics: a dict with a scalar ``"loss"`` (checked at trace time)."""
    if not isinstance(metrics, Mapping) or "loss" not in metrics:
        got = sorted(metrics) if isinstance(metrics, Mapping) else type(metrics).__name__
        raise ValueError(
            f"train_step must return (state, metrics) with metrics['loss'], got metrics {got}; "
            "build it with jopt.train.make_train_step(loss_fn), or add the loss under 'loss'"
        )
    if jnp.ndim(metrics["loss"]) != 0:
        raise ValueError(
            f"train_step's metrics['loss'] must be a scalar, got shape "
            f"{jnp.shape(metrics['loss'])}; return the batch mean"
        )


def is_good(metrics: Mapping[str, Any], new_state: TrainState) -> jax.Array:
    """Whether a step may be applied: finite loss, parameters and optimizer state."""
    return (
        jnp.isfinite(metrics["loss"])
        & tree.all_finite(new_state.params)
        & tree.all_finite(new_state.opt_state)
    )


def guard_nonfinite(train_step: StepFn, skip: bool = True) -> Callable[..., Any]:
    """Wrap ``train_step`` as ``(state, bad, batch) -> (state, bad, metrics)``.

    ``bad`` counts consecutive bad steps: a non-finite loss or gradient (see
    :func:`guarded_update`). With ``skip`` such a step is not applied: the state comes
    back unchanged.
    """
    check.boolean("skip", skip)

    def guarded(state, bad, batch):
        state, metrics, good = guarded_update(train_step, state, batch, skip)
        return state, jnp.where(good, 0, bad + 1).astype(jnp.int32), metrics

    return guarded


def guarded_update(
    train_step: StepFn, state: TrainState, batch: Any, skip: bool, halted: Any = False
) -> tuple[TrainState, dict[str, Any], jax.Array]:
    """The one skip of a bad step: ``(state, metrics, good)`` after ``train_step``; the
    old state is kept when the run is ``halted`` or, with ``skip``, the step is bad.

    A step built by :func:`~jopt.train.make_train_step` is judged before its update (a
    finite loss and gradient) and the update runs only when it is applied, so the
    donated state is updated in place. Any other ``train_step`` is judged after it ran
    (finite loss, parameters and optimizer state), which keeps the old state alive
    beside the new one for the choice.
    """
    allow = ~jnp.asarray(halted)
    judged_first = getattr(train_step, "guarded_update", None)
    if judged_first is not None:
        state, metrics, good = judged_first(state, batch, allow, skip)
        check_metrics(metrics)
        return state, metrics, good
    new_state, metrics = train_step(state, batch)
    check_metrics(metrics)
    good = is_good(metrics, new_state)
    keep_new = allow & (good | (not skip))
    # One choice between two whole states, taken by a branch (not an elementwise select)
    # so that the chosen buffers are passed through without another pass over memory.
    state = jax.lax.cond(keep_new, lambda: new_state, lambda: state)
    return state, metrics, good


def accumulating_step(train_step: StepFn, skip: bool) -> Callable[..., Any]:
    """``(state, totals, limit, batch) -> (state, totals)``: a guarded step that adds its
    scalar metrics to the totals when applied. Once ``limit`` bad steps came in a row the
    run is over: later steps change nothing (so checking the count late is still exact)."""
    check.boolean("skip", skip)

    def step(state, totals, limit, batch):
        halted = totals.bad >= limit
        state, metrics, good = guarded_update(train_step, state, batch, skip, halted)
        applied = good & ~halted
        sums = {k: s + jnp.where(applied, metrics[k], 0.0) for k, s in totals.sums.items()}
        bad = jnp.where(halted, totals.bad, jnp.where(good, 0, totals.bad + 1))
        skipped = totals.skipped + (~good & ~halted)
        return state, EpochTotals(sums, totals.good + applied, bad.astype(jnp.int32), skipped)

    return step


@functools.lru_cache(maxsize=64)
def compiled_step(train_step: StepFn, skip: bool) -> Callable[..., Any]:
    """:func:`accumulating_step`, jitted with the state donated; one per ``(train_step,
    skip)``, so a second :func:`fit` with the same step compiles nothing."""
    return jax.jit(accumulating_step(train_step, skip), donate_argnums=(0,))


@functools.lru_cache(maxsize=64)
def compiled_steps(train_step: StepFn, skip: bool) -> Callable[..., Any]:
    """``(state, totals, limit, batches) -> (state, totals)``: :func:`accumulating_step`
    over a stack of batches (a leading axis, one batch per step) in one call, by
    ``lax.scan``; jitted with the state donated and cached like :func:`compiled_step`.

    One call per batch costs a dispatch and a Python iteration each (about as much as the
    whole step of a small model on a CPU); one call per stack pays them once.
    """
    step = accumulating_step(train_step, skip)

    def steps(state, totals, limit, batches):
        def body(carry, batch):
            return step(*carry, limit, batch), None

        return jax.lax.scan(body, (state, totals), batches)[0]

    return jax.jit(steps, donate_argnums=(0,))


def epoch_row(totals: EpochTotals) -> dict[str, float]:
    """The mean of each metric over the applied steps (NaN when none was)."""
    host = jax.device_get(totals)
    good = int(host.good)
    row = {k: float(v) / good if good else float("nan") for k, v in host.sums.items()}
    return row or {"loss": float("nan")}
