"""The pure body of an epoch, shared by :func:`~jopt.train.fit` and
:func:`~jopt.train.fit_compiled`: one guarded step and the running totals it adds to.

A step is *bad* when its loss or its gradient holds an inf or a NaN (for a step that
is not a :class:`~jopt.train.TrainStep`, which jopt cannot look into: its loss, new
parameters or new optimizer state). A bad step is not applied, and counted.
Everything here is ``jnp``, so :func:`fit` runs it as one jitted call per batch (the
totals stay on the device: no host synchronisation inside an epoch) and
:func:`fit_compiled` inside ``lax.scan``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree
from jopt.schedules._hyper import zero_count
from jopt.train._loss_output import scalar_loss
from jopt.train._state import TrainState
from jopt.train._step import TrainStep

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


_PLAIN_STEPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""The cache of each plain-function step, dropped with the function."""


def step_cache(train_step: StepFn) -> dict[Any, Any]:
    """Where programs compiled from ``train_step`` and its metric names are kept: on a
    :class:`TrainStep`, or in a weak cache of plain functions (a fresh dict, so nothing is
    kept, for a callable that cannot be weakly referenced). Nothing keeps a step alive."""
    if isinstance(train_step, TrainStep):
        return train_step.cache
    try:
        return _PLAIN_STEPS.setdefault(train_step, {})
    except TypeError:
        return {}


def _weak(train_step: StepFn) -> StepFn:
    """``train_step`` called through a weak reference, so that programs cached for it (in
    the weak cache keyed by it) do not keep it alive."""
    if isinstance(train_step, TrainStep):
        return train_step
    try:
        ref = weakref.ref(train_step)
    except TypeError:
        return train_step

    def call(state, batch):
        return ref()(state, batch)

    return call


def metric_names(train_step: StepFn, state: TrainState, batch: Any) -> list[str]:
    """The scalar metrics ``train_step`` reports (traced, not run); checks ``"loss"``.

    Remembered per step, state structure and batch shapes: tracing a large model's step
    again would cost each later :func:`fit` call a noticeable part of an epoch.
    """
    batch_leaves, batch_def = jax.tree.flatten(batch)
    key = ("names", jax.tree.structure(state), batch_def,
           tuple((jnp.shape(x), jnp.result_type(x)) for x in batch_leaves))  # fmt: skip
    cache = step_cache(train_step)
    if key not in cache:
        metrics = jax.eval_shape(_weak(train_step), state, batch)[1]
        check_metrics(metrics)
        cache[key] = [k for k, v in metrics.items() if v.ndim == 0]
    return cache[key]


def check_metrics(metrics: Any) -> None:
    """A step's metrics: a dict with a scalar ``"loss"`` (checked at trace time)."""
    if not isinstance(metrics, Mapping) or "loss" not in metrics:
        got = sorted(metrics) if isinstance(metrics, Mapping) else type(metrics).__name__
        raise ValueError(
            f"train_step must return (state, metrics) with metrics['loss'], got metrics {got}; "
            "build it with jopt.train.make_train_step(loss_fn), or add the loss under 'loss'"
        )
    scalar_loss("train_step", metrics["loss"], "metrics['loss']")


def is_good(metrics: Mapping[str, Any], new_state: TrainState) -> jax.Array:
    """Whether a step may be applied: finite loss, parameters and optimizer state."""
    return (
        jnp.isfinite(metrics["loss"])
        & tree.all_finite(new_state.params)
        & tree.all_finite(new_state.opt_state)
    )


def guarded_update(
    train_step: StepFn, state: TrainState, batch: Any, skip: bool, halted: Any = False
) -> tuple[TrainState, dict[str, Any], jax.Array]:
    """The one skip of a bad step: ``(state, metrics, good)`` after ``train_step``; the
    old state is kept when the run is ``halted`` or, with ``skip``, the step is bad.

    A :class:`~jopt.train.TrainStep` is judged before its update (a finite loss and
    gradient) and the update runs only when it is applied, so the donated state is
    updated in place. Any other ``train_step`` is judged after it ran (finite loss,
    parameters and optimizer state), which keeps the old state alive beside the new
    one for the choice.
    """
    allow = ~jnp.asarray(halted)
    if isinstance(train_step, TrainStep):
        state, metrics, good = train_step.judged(state, batch, allow, skip)
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


def donates(train_step: StepFn) -> bool:
    """Whether ``fit`` may donate the state to ``train_step``: a :class:`TrainStep` says
    so itself; a step written by hand is taken to donate, as ``make_train_step`` does."""
    return train_step.donate if isinstance(train_step, TrainStep) else True


def compiled_step(train_step: StepFn, skip: bool) -> Callable[..., Any]:
    """:func:`accumulating_step`, jitted (donating the state when the step does); kept in
    :func:`step_cache`, so a second :func:`fit` with the same step compiles nothing."""
    cache = step_cache(train_step)
    if ("one", skip) not in cache:
        step = accumulating_step(_weak(train_step), skip)
        cache["one", skip] = jax.jit(step, donate_argnums=(0,) if donates(train_step) else ())
    return cache["one", skip]


def compiled_steps(train_step: StepFn, skip: bool) -> Callable[..., Any]:
    """``(state, totals, limit, batches) -> (state, totals)``: :func:`accumulating_step`
    over a stack of batches (a leading axis, one batch per step) in one call, by
    ``lax.scan``; jitted and cached like :func:`compiled_step`.

    One call per batch costs a dispatch and a Python iteration each (about as much as the
    whole step of a small model on a CPU); one call per stack pays them once.
    """
    cache = step_cache(train_step)
    if ("stack", skip) not in cache:
        step = accumulating_step(_weak(train_step), skip)

        def steps(state, totals, limit, batches):
            def body(carry, batch):
                return step(*carry, limit, batch), None

            return jax.lax.scan(body, (state, totals), batches)[0]

        donate = (0,) if donates(train_step) else ()
        cache["stack", skip] = jax.jit(steps, donate_argnums=donate)
    return cache["stack", skip]
