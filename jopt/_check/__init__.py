"""Validation of hyperparameters at construction time: one helper per rule, one message shape.

Every message reads ``"<name> must be <rule>, got <value>; <fix>"``. Values that
are traced (a hyperparameter injected into the state by ``inject_hyperparams``)
cannot be inspected and pass through: they are checked where they were created.
A schedule (a callable) is accepted only where optax gives it meaning (the learning
rate, weight decay, ...: the call site says ``schedule=True``); there it is probed at a
few steps and its values must obey the same rule as a constant, with one difference:
a schedule may *reach* the boundary of an open range (a threshold annealed to 0, a
decay rising to 1) where a constant at it is refused, as a learning rate may decay to 0.
The same holds for the values ``inject_hyperparams`` computes from a schedule.
Elsewhere a schedule is refused at construction, naming the argument and pointing to
``inject_hyperparams``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import jax
import numpy as np

from jopt._check._objects import (  # noqa: F401
    argument_names,
    array_dtype,
    dimension_numbers,
    dtype,
    is_transformation,
    mask,
    params_given,
    prng_key,
    same_shape,
    static_value,
    train_state,
    transformation,
)

# Rules on whole pytrees, on schedules and on objects (keys, masks, dtypes, transformations,
# states) live in their own modules; the call sites use
# them through this one, as ``check.<rule>``.
from jopt._check._schedules import (  # noqa: F401
    PROBE_STEPS,
    probe_schedule,
    scheduled_label,
    scheduled_values,
)
from jopt._check._trees import (  # noqa: F401
    FLOAT_PARAMS_FIX,
    first_mismatch,
    inexact_leaves,
    same_structure,
    update_inputs,
)


def _concrete_scalar(value: Any) -> float | None:
    """The value as a Python float, or None when it cannot be inspected."""
    if callable(value) or isinstance(value, jax.core.Tracer):
        return None
    try:
        array = np.asarray(value)
    except Exception:  # noqa: BLE001 - an exotic object: leave it to the maths to fail
        return None
    if array.shape != () or array.dtype.kind not in "biuf":
        return None
    return float(array)


def _fail(name: str, rule: str, value: Any, fix: str) -> None:
    raise ValueError(f"{name} must be {rule}, got {value!r}; {fix}")


def number(name: str, value: Any, schedule: bool = False) -> float | None:
    """Reject non-numeric and non-finite values; return the float (None if not inspectable).

    A schedule (a callable) is refused unless ``schedule`` is True; then it is probed
    (:func:`probe_schedule`) and its value at step 0 is returned.
    """
    probed = values(name, value, schedule)
    return probed[0][1] if probed else None


def values(name: str, value: Any, schedule: bool = False) -> list[tuple[str, float]]:
    """``(label, value)`` pairs a range rule must check: the constant itself, or a
    schedule's value at each of :data:`PROBE_STEPS` (empty when not inspectable)."""
    from_schedule, label = scheduled_label(name)
    if from_schedule and not callable(value) and not isinstance(value, bool):
        return _scheduled_value(name, label, value)
    if isinstance(value, bool) or isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be a number, got {value!r} of type {type(value).__name__}")
    if callable(value):
        if not schedule:
            raise TypeError(
                f"{name} must be a number, not a schedule, got {value!r}; it takes no "
                f"schedule here: to change it during training, build the optimizer with "
                f"jopt.inject_hyperparams(factory)({name}=schedule, ...)"
            )
        return probe_schedule(name, value)
    if isinstance(value, jax.core.Tracer):
        return []
    x = _concrete_scalar(value)
    if x is None:
        if np.ndim(value) != 0:
            raise TypeError(f"{name} must be a scalar, got an array of shape {np.shape(value)}")
        return []
    if not math.isfinite(x):
        _fail(name, "a finite number", value, "pass a finite value")
    return [(name, x)]


def _scheduled_value(name: str, label: str | None, value: Any) -> list[tuple[str, float]]:
    """A value ``inject_hyperparams`` computed from a schedule (see :func:`scheduled_values`)."""
    x = None if label is None else _concrete_scalar(value)
    if x is None:
        return []
    if not math.isfinite(x):
        _fail(label, "finite", x, f"fix the schedule given for {name}")
    return [(label, x)]


def _reported(name: str, label: str, value: Any, got: float) -> Any:
    """What a message shows: the constant as passed, or a schedule's value at its step."""
    return value if label == name else got


def finite(name: str, value: Any) -> None:
    """A number or an array of numbers, every entry finite (tracers pass)."""
    if isinstance(value, jax.core.Tracer):
        return
    kind = np.asarray(value).dtype.kind if not callable(value) and value is not None else "O"
    if isinstance(value, (bool, str, bytes)) or kind in "bOSUc":
        raise TypeError(f"{name} must be a number or an array of numbers, got {value!r}")
    if not np.all(np.isfinite(np.asarray(value, np.float64))):
        _fail(name, "finite", value, "pass finite values")


def scalar_or_schedule(name: str, value: Any) -> None:
    """Accept a schedule (probed, see :func:`probe_schedule`) or a finite scalar."""
    values(name, value, schedule=True)


def not_schedule(name: str, value: Any, why: str) -> None:
    """Reject a schedule where only a number makes sense; ``why`` says why and what to do."""
    if callable(value):
        raise TypeError(f"{name} must be a number, not a schedule, got {value!r}; {why}")


def function(name: str, value: Any, example: str) -> None:
    """A callable; ``example`` shows its expected signature."""
    if not callable(value):
        raise TypeError(f"{name} must be a function such as {example}, got {value!r}")


def learning_rate(name: str, value: Any) -> None:
    """A learning rate: a finite number >= 0, or a schedule whose probed values are."""
    for label, got in values(name, value, schedule=True):
        if got < 0:
            _fail(
                label,
                ">= 0",
                value if label == name else got,
                "pass a positive step size such as 1e-3; to ascend, negate the loss",
            )


def non_negative(
    name: str, value: Any, fix: str = "pass a value >= 0", schedule: bool = False
) -> None:
    """A finite number >= 0 (a schedule only where ``schedule``: each probed value >= 0)."""
    for label, got in values(name, value, schedule):
        if got < 0:
            _fail(label, ">= 0", value if label == name else got, fix)


def positive(name: str, value: Any, fix: str = "pass a value > 0") -> None:
    """A finite number > 0 (schedules are refused: see :func:`number`; a value computed from
    a schedule by ``inject_hyperparams`` may reach 0)."""
    for label, got in values(name, value):
        if got < 0 or (got == 0 and label == name):
            _fail(
                label, "> 0" if label == name else ">= 0", _reported(name, label, value, got), fix
            )


def unit_interval(
    name: str, value: Any, fix: str = "pass a value in [0, 1) such as 0.9", schedule: bool = False
) -> None:
    """A decay rate: a finite number in [0, 1) (a schedule only where ``schedule``; a
    schedule may reach 1)."""
    for label, got in values(name, value, schedule):
        if not 0 <= got < 1 and not (label != name and got == 1):
            rule = "in [0, 1)" if label == name else "in [0, 1]"
            _fail(label, rule, _reported(name, label, value, got), fix)


def average_decay(name: str, value: Any, example: str = "0.9", schedule: bool = False) -> None:
    """The decay of a moving average that starts from a fixed value: in [0, 1).

    At 1 the average never moves from its initial value (jopt refuses it; a running sum, as
    in ``trace``, takes ``closed_unit_interval`` instead).
    """
    fix = f"pass a value in [0, 1) such as {example} (at 1 the average never leaves its start)"
    unit_interval(name, value, fix, schedule)


def closed_unit_interval(name: str, value: Any, fix: str = "pass a value in [0, 1]") -> None:
    """A fraction: a finite number in [0, 1]."""
    x = number(name, value)
    if x is not None and not 0 <= x <= 1:
        _fail(name, "in [0, 1]", value, fix)


def interval(name: str, value: Any, low: float, high: float, fix: str | None = None) -> None:
    """A finite number in the closed interval [low, high]."""
    x = number(name, value)
    if x is not None and not low <= x <= high:
        _fail(name, f"in [{low}, {high}]", value, fix or f"pass a value in [{low}, {high}]")


def open_interval(name: str, value: Any, low: float, high: float, fix: str | None = None) -> None:
    """A finite number in the open interval (low, high) (a schedule's value may reach the ends)."""
    for label, got in values(name, value):
        if not low < got < high and not (label != name and low <= got <= high):
            rule = f"in ({low}, {high})" if label == name else f"in [{low}, {high}]"
            fix = fix or f"pass a value in ({low}, {high})"
            _fail(label, rule, _reported(name, label, value, got), fix)


def greater_than(name: str, value: Any, bound: float, fix: str | None = None) -> None:
    """A finite number strictly greater than ``bound`` (a schedule's value may reach it)."""
    for label, got in values(name, value):
        if got < bound or (got == bound and label == name):
            rule = f"> {bound}" if label == name else f">= {bound}"
            _fail(label, rule, _reported(name, label, value, got), fix or f"pass a value > {bound}")


def integer(name: str, value: Any, minimum: int = 0, fix: str | None = None) -> None:
    """A Python or NumPy integer >= ``minimum`` (bool is not an integer here)."""
    if isinstance(value, jax.core.Tracer):  # injected by inject_hyperparams: checked before
        return
    if (
        isinstance(value, (np.ndarray, jax.Array))
        and value.shape == ()
        and value.dtype.kind in "iu"
    ):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r} of type {type(value).__name__}")
    if value < minimum:
        _fail(name, f"an integer >= {minimum}", value, fix or f"pass an integer >= {minimum}")


def even_integer(name: str, value: Any, minimum: int = 2, fix: str | None = None) -> None:
    """An integer >= ``minimum`` that is even (e.g. a block of packed 4-bit codes)."""
    fix = fix or f"pass an even integer >= {minimum}"
    integer(name, value, minimum, fix)
    if not isinstance(value, jax.core.Tracer) and int(value) % 2:
        _fail(name, "even", value, fix)


def whole_number(name: str, value: Any, minimum: int = 0, fix: str | None = None) -> float | None:
    """A count of steps, as optax's schedules take it: a whole number >= ``minimum``.

    Unlike :func:`integer`, a whole float such as ``1e4`` passes (optax computes with
    it); a fraction such as ``2.5`` does not. Arrays and tracers pass when not concrete.
    Returns the value as a float, as :func:`number` does (None if not inspectable).
    """
    x = number(name, value)
    if x is not None and not (x.is_integer() and x >= minimum):
        _fail(name, f"a whole number >= {minimum}", value, fix or f"pass an integer >= {minimum}")
    return x


def iterations(name: str, value: Any, minimum: int) -> None:
    """An iteration budget: a whole number >= ``minimum`` (whole floats pass, as in optax)."""
    whole_number(name, value, minimum, f"pass an integer >= {minimum} such as 20")


def positive_or_inf(name: str, value: Any, fix: str) -> None:
    """A number > 0 where ``math.inf`` is meaningful (it switches a criterion off)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == math.inf:
        return
    positive(name, value, fix)


def boolean(name: str, value: Any) -> None:
    """A Python bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")


def one_of(name: str, value: Any, options: Iterable[Any]) -> None:
    """One of a fixed set of options; the message lists them."""
    options = tuple(options)
    if value not in options:
        listed = ", ".join(repr(o) for o in options)
        raise ValueError(f"{name} must be one of {listed}, got {value!r}")


def optional(check: Callable[..., None], name: str, value: Any, *args: Any) -> None:
    """Apply ``check`` unless ``value`` is None."""
    if value is not None:
        check(name, value, *args)
