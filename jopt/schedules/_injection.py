"""Hyperparameters that live in the optimizer state (:func:`inject_hyperparams`).

Moving a learning rate (or any numeric hyperparameter) from the closure into the
state lets it be read, changed between steps without recompiling, scheduled,
and vmapped over: hyperparameter search builds on it.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

from jopt import _check, tree
from jopt._flat._capability import check_flat
from jopt.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    OptState,
    Schedule,
    declared_static_args,
    with_extra_args_support,
)
from jopt.schedules._hyper import zero_count

ScheduleState = Any
"""The state of a :class:`StatefulSchedule` (a pytree of arrays)."""


@runtime_checkable
class StatefulSchedule(Protocol):
    """A schedule with a state: ``init()``, ``update(state, **extra)``, ``__call__(state)``.

    Unlike a plain schedule (a function of the step count) it may react to the
    ``update`` extra arguments, e.g. a learning rate cut when the loss plateaus.
    """

    def init(self) -> ScheduleState: ...

    def update(self, state: ScheduleState, **extra_args: Any) -> ScheduleState: ...

    def __call__(self, state: ScheduleState, **extra_args: Any) -> Any: ...


class WrappedScheduleState(NamedTuple):
    """State of :class:`WrappedSchedule`."""

    count: jax.Array  # int32 scalar, number of updates seen (saturates)


class WrappedSchedule:
    """A plain schedule ``step -> value`` as a :class:`StatefulSchedule` whose state is the step."""

    def __init__(self, schedule_fn: Schedule):
        self.schedule_fn = schedule_fn

    def init(self) -> WrappedScheduleState:
        """Step zero."""
        return WrappedScheduleState(count=zero_count())

    def update(self, state: WrappedScheduleState, **extra_args: Any) -> WrappedScheduleState:
        """Advance one step."""
        del extra_args
        return WrappedScheduleState(count=tree.safe_increment(state.count))

    def __call__(self, state: WrappedScheduleState, **extra_args: Any) -> Any:
        """The schedule's value at the current step."""
        del extra_args
        return self.schedule_fn(state.count)


class InjectHyperparamsState(NamedTuple):
    """Deprecated: the layout optax used before 0.1.9, kept (as optax keeps it) so that code
    naming the type still imports. Nothing builds it: :func:`inject_hyperparams` returns
    :class:`InjectStatefulHyperparamsState`, which adds ``hyperparams_states``.
    """

    count: jax.Array  # int32 scalar, number of updates seen (saturates)
    hyperparams: dict[str, Any]  # name -> scalar array, the values of the last update
    inner_state: OptState  # state of the transform built with those values


class InjectStatefulHyperparamsState(NamedTuple):
    """State of :func:`inject_hyperparams`."""

    count: jax.Array  # int32 scalar, number of updates seen (saturates)
    hyperparams: dict[str, Any]  # name -> scalar array; set a numeric one to change it
    hyperparams_states: dict[str, ScheduleState]  # name -> state of its schedule
    inner_state: OptState  # state of the transform built with those values


def _convert_floats(value: Any, dtype: Any) -> Any:
    """Floating scalars to ``dtype``; strongly typed arrays and integers pass unchanged."""
    if isinstance(value, jax.Array) and not getattr(value, "weak_type", False):
        return value
    current = value.dtype if hasattr(value, "dtype") else type(value)
    if jax.dtypes.issubdtype(current, jnp.floating):
        return jnp.asarray(value, dtype=dtype)
    return value


def _like(value: Any, old: Any) -> Any:
    """``value`` as an array of the dtype ``old`` had in the state, if it was an array.

    A floating value is never cast to an integer one: a stateful schedule whose state
    starts as int32 and gets a float added gives a float rate (0.3, not 0), as in optax.
    """
    value = jnp.asarray(value)
    if not isinstance(old, (jax.Array, np.ndarray)) or value.dtype == old.dtype:
        return value
    inexact = jnp.issubdtype(value.dtype, jnp.inexact)
    if inexact and not jnp.issubdtype(old.dtype, jnp.inexact):
        return value
    return value.astype(old.dtype)


def _is_numeric(value: Any) -> bool:
    # As in optax: a NumPy scalar that is not a Python float (np.float32, np.int32) is static.
    return isinstance(value, (int, float, np.ndarray, jax.Array))


def _checked_factory(
    inner_factory: Any, static_args: str | Iterable[str]
) -> tuple[set[str], inspect.Signature]:
    """The static argument names as a set and the factory's signature, or a clear error."""
    if not callable(inner_factory):
        raise TypeError(
            f"inner_factory must be a function returning a transform, got {inner_factory!r}; "
            "pass the factory itself, e.g. jopt.adam rather than jopt.adam(1e-3)"
        )
    if not isinstance(static_args, str) and not isinstance(static_args, Iterable):
        raise TypeError(
            f"static_args must be an argument name or an iterable of them, got {static_args!r}; "
            "pass e.g. static_args=('min_dim_size_to_factor',)"
        )
    static_args = {static_args} if isinstance(static_args, str) else set(static_args)
    static_args |= declared_static_args(inner_factory)
    signature = inspect.signature(inner_factory)
    unknown = static_args - set(signature.parameters)
    if unknown:
        raise ValueError(
            f"static_args must name arguments of inner_factory, got unknown {sorted(unknown)}; "
            f"pick from {sorted(signature.parameters)}"
        )
    return static_args, signature


def _sort_arguments(
    arguments: dict[str, Any], supplied: set[str], static_args: set[str]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Split the factory's arguments into (schedules, numeric values, static others)."""
    schedules, numeric, other = {}, {}, {}
    for name, value in arguments.items():
        # Dtypes (jnp.float32 is a class, hence callable) and callables left at
        # the factory's default (a norm function, a clipping rule) are not schedules.
        static = name in static_args or isinstance(value, (bool, type, np.dtype))
        if static or (callable(value) and name not in supplied):
            other[name] = value
        elif isinstance(value, StatefulSchedule):
            schedules[name] = value
        elif callable(value):
            schedules[name] = WrappedSchedule(value)
        elif _is_numeric(value):
            numeric[name] = value
        else:
            other[name] = value
    return schedules, numeric, other


def _dtype_of(params: Any, hyperparam_dtype: Any) -> Any:
    # "promote" is optax's "highest" wherever that is defined (an int32 leaf
    # next to float32 ones must not make the learning rate an integer).
    return tree.dtype(params, "promote") if hyperparam_dtype is None else hyperparam_dtype


def _probes(name: str, schedule: Any) -> list[tuple[str, Any]]:
    """``(label, value)``: a schedule's first value, and a plain schedule's values at the
    later :data:`~jopt._check.PROBE_STEPS` where it gives a finite number."""
    probes = [(f"{name} (a schedule) at step 0", schedule(schedule.init()))]
    if not isinstance(schedule, WrappedSchedule):
        return probes
    for step in _check.PROBE_STEPS[1:]:
        try:  # a schedule may overflow far past its horizon: no mistake, not probed
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                value = schedule.schedule_fn(np.int32(step))
            finite = np.ndim(value) == 0 and bool(np.isfinite(np.asarray(value, np.float64)))
        except Exception:  # noqa: BLE001 - only the start must evaluate
            continue
        if finite and not isinstance(value, jax.core.Tracer):
            probes.append((f"{name} (a schedule) at step {step}", value))
    return probes


def _check_by_building(
    inner_factory: Any,
    signature: inspect.Signature,
    bound: inspect.BoundArguments,
    schedules: dict[str, Any],
) -> None:
    """Build the transform once, so that the factory's own checks reject bad numbers where
    the user passed them; a schedule is probed as everywhere (its start and a few later
    steps): each value must obey the factory's rule, but may reach the boundary of an
    open range (a threshold annealed to 0), as a schedule may elsewhere."""
    first = {k: s(s.init()) for k, s in schedules.items()}
    arguments = {**bound.arguments, **first}
    for k, s in schedules.items():
        for label, value in _probes(k, s):
            checked = inspect.BoundArguments(signature, {**arguments, k: value})
            with _check.scheduled_values({**dict.fromkeys(first), k: label}):
                inner_factory(*checked.args, **checked.kwargs)
    if not schedules:
        checked = inspect.BoundArguments(signature, arguments)
        inner_factory(*checked.args, **checked.kwargs)


def _build(inner_factory: Any, schedules: dict[str, Any], arguments: dict[str, Any]) -> Any:
    """The transform for this step's values; those computed from schedules were probed
    when the optimizer was built and are not checked again (eager and jit alike)."""
    with _check.scheduled_values(dict.fromkeys(schedules)):
        return inner_factory(**arguments)


def _initial_state(
    inner_factory: Any,
    other: dict[str, Any],
    numeric: dict[str, Any],
    schedules: dict[str, Any],
    params: Any,
    dtype: Any,
) -> InjectStatefulHyperparamsState:
    hyperparams = {k: jnp.asarray(_convert_floats(v, dtype)) for k, v in numeric.items()}
    schedule_states = {k: s.init() for k, s in schedules.items()}
    for k, s in schedules.items():
        # The factory gets the value as the schedule gave it, as in optax: a
        # callable mask passed as a hyperparameter gives a Python bool, which the
        # factory must see as such (an array bool cannot be branched on under jit).
        hyperparams[k] = _convert_floats(s(schedule_states[k]), dtype)
    inner = _build(inner_factory, schedules, {**other, **hyperparams})
    check_flat("inject_hyperparams", [inner], params)
    inner_state = inner.init(params)
    return InjectStatefulHyperparamsState(
        count=zero_count(),
        hyperparams={k: jnp.asarray(v) for k, v in hyperparams.items()},
        hyperparams_states=schedule_states,
        inner_state=inner_state,
    )


def _scheduled(
    state: InjectStatefulHyperparamsState,
    schedules: dict[str, Any],
    dtype: Any,
    extra_args: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, ScheduleState]]:
    """This step's hyperparameters (the schedules' values over the state's numbers) and
    the schedules' next states."""
    hyperparams = {k: _convert_floats(v, dtype) for k, v in state.hyperparams.items()}
    for k, s in schedules.items():
        value = s(state.hyperparams_states[k], **extra_args)
        hyperparams[k] = _convert_floats(value, dtype)
    schedule_states = {
        k: s.update(state.hyperparams_states[k], **extra_args) for k, s in schedules.items()
    }
    return hyperparams, schedule_states


def _next_state(
    state: InjectStatefulHyperparamsState,
    hyperparams: dict[str, Any],
    schedule_states: dict[str, ScheduleState],
    inner_state: OptState,
) -> InjectStatefulHyperparamsState:
    # Keep the state's types fixed (a Python float set by the user, or
    # schedule values computed without params, must not cause a retrace).
    stored = {k: _like(v, state.hyperparams.get(k, v)) for k, v in hyperparams.items()}
    return InjectStatefulHyperparamsState(
        count=tree.safe_increment(state.count),
        hyperparams=stored,
        hyperparams_states=schedule_states,
        inner_state=inner_state,
    )


def inject_hyperparams(
    inner_factory: Callable[..., GradientTransformation],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., GradientTransformationExtraArgs]:
    r"""Build ``inner_factory``'s transform with its numeric hyperparameters in the state.

    ``inject_hyperparams(jopt.adam)(learning_rate=1e-3)`` behaves like
    ``jopt.adam(1e-3)``, but ``state.hyperparams["learning_rate"]`` holds the rate:
    replace it (``state.hyperparams["learning_rate"] = jnp.asarray(3e-4)``) to change
    it without recompiling, or vmap over a batch of states to train several rates at
    once. A schedule (or :class:`StatefulSchedule`) may be passed for any numeric
    hyperparameter; its value at each step is written to the state.

    .. math::  \theta_t = \text{hyperparams}_t, \qquad u_t = T_{\theta_t}(g_t)

    Numeric values are validated once, here, by ``inner_factory``'s own rules.

    Args:
      inner_factory: a function returning a transform, e.g. :func:`jopt.adam`.
      static_args: names of ``inner_factory``'s arguments that are callables but not
        schedules (every other callable passed is treated as a schedule; callables
        left at their default and dtypes are static).
      hyperparam_dtype: dtype of floating hyperparameters; None (default) uses the
        widest dtype of the params.

    Returns:
      A function taking ``inner_factory``'s arguments and returning a
      :class:`GradientTransformationExtraArgs` whose state is an
      :class:`InjectStatefulHyperparamsState`.

    Example:
      >>> import jopt, jax.numpy as jnp
      >>> tx = jopt.inject_hyperparams(jopt.sgd)(learning_rate=0.1)
      >>> state = tx.init({"w": jnp.zeros(2)})
      >>> state.hyperparams["learning_rate"]
      Array(0.1, dtype=float32)
    """
    static_args, signature = _checked_factory(inner_factory, static_args)
    _check.dtype("hyperparam_dtype", hyperparam_dtype)

    @functools.wraps(inner_factory)
    def wrapped_transform(*args: Any, **kwargs: Any) -> GradientTransformationExtraArgs:
        bound = signature.bind(*args, **kwargs)
        supplied = set(bound.arguments)
        bound.apply_defaults()
        schedules, numeric, other = _sort_arguments(bound.arguments, supplied, static_args)
        _check_by_building(inner_factory, signature, bound, schedules)

        def init(params):
            dtype = _dtype_of(params, hyperparam_dtype)
            return _initial_state(inner_factory, other, numeric, schedules, params, dtype)

        def update(updates, state, params=None, **extra_args):
            dtype = _dtype_of(params, hyperparam_dtype)
            hyperparams, schedule_states = _scheduled(state, schedules, dtype, extra_args)
            inner = with_extra_args_support(
                _build(inner_factory, schedules, {**other, **hyperparams})
            )
            new_updates, inner_state = inner.update(
                updates, state.inner_state, params, **extra_args
            )
            if jax.tree.structure(new_updates) == jax.tree.structure(updates):
                # A hyperparam_dtype wider than the gradients must not widen the updates.
                new_updates = tree.cast_like(new_updates, updates)
            return new_updates, _next_state(state, hyperparams, schedule_states, inner_state)

        return GradientTransformationExtraArgs(init, update)

    return wrapped_transform


def inject_stateful_hyperparams(
    inner_factory: Callable[..., GradientTransformation],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., GradientTransformationExtraArgs]:
    """The same as :func:`inject_hyperparams` (optax's earlier name, which also takes
    :class:`StatefulSchedule` hyperparameters).

    Args:
      inner_factory: a function returning a transform.
      static_args: names of callable arguments that are not schedules.
      hyperparam_dtype: dtype of floating hyperparameters; None uses the params'.
    """
    return inject_hyperparams(inner_factory, static_args, hyperparam_dtype)
