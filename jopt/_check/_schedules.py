"""Schedules given for hyperparameters: recognised, probed at a few steps, refused clearly.

Part of :mod:`jopt._check` (its call sites use ``check.probe_schedule``): a schedule is
accepted only where optax gives one meaning, and there its values must obey the rule a
constant would.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import math
import types
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import jax
import numpy as np

# Steps at which a schedule is probed when an optimizer is built: its start, its first
# update and two late steps (warmups end and decays bottom out within most runs).
PROBE_STEPS = (0, 1, 1_000, 100_000)

# Hyperparameters whose values come from a schedule while a transform is built from them
# (``inject_hyperparams``): name -> the label of the probed step, or None for a value the
# build-time probe has already checked. Set only for the duration of one factory call.
_SCHEDULED: contextvars.ContextVar[Mapping[str, str | None]] = contextvars.ContextVar(
    "jopt_scheduled_hyperparameters", default=types.MappingProxyType({})
)


@contextlib.contextmanager
def scheduled_values(labels: Mapping[str, str | None]) -> Iterator[None]:
    """Build a transform from schedules' values: the checks see them as schedule values.

    ``labels`` maps an argument name to the probed step's label (its value is then checked
    as a schedule's: reaching the boundary of a range is accepted, as for any schedule), or
    to None (its schedule was probed when the optimizer was built; the value is not checked
    again, eager or under ``jit`` alike).
    """
    token = _SCHEDULED.set({**_SCHEDULED.get(), **labels})
    try:
        yield
    finally:
        _SCHEDULED.reset(token)


def scheduled_label(name: str) -> tuple[bool, str | None]:
    """Whether ``name``'s value comes from a schedule now, and the label to report it by."""
    labels = _SCHEDULED.get()
    return name in labels, labels.get(name)


def _required_positional(fn: Any) -> int | None:
    """How many positional parameters ``fn`` requires (None if it cannot be told)."""
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(p.kind in positional and p.default is p.empty for p in parameters)


def probe_schedule(name: str, schedule: Any) -> list[tuple[str, float]]:
    """Check that ``schedule`` is a schedule ``step -> scalar``; return its probed values.

    A schedule *factory* passed uncalled (``jopt.exponential_decay`` instead of
    ``jopt.exponential_decay(...)``) needs more than one argument: it is refused with the
    fix. The schedule is then called at :data:`PROBE_STEPS`; every value must be a finite
    scalar. Values that are traced (a schedule built inside ``jit``) are not inspected.
    """
    required = _required_positional(schedule)
    if required is not None and required != 1:
        what = getattr(schedule, "__name__", repr(schedule))
        raise TypeError(
            f"{name} must be a number or a schedule step -> value, got {what}, which takes "
            f"{required} arguments: it looks like a schedule factory passed uncalled; call it, "
            f"e.g. {name}=jopt.exponential_decay(init_value=1e-3, transition_steps=1000, "
            "decay_rate=0.9)"
        )
    probed = []
    for step in PROBE_STEPS:
        label = f"{name} (a schedule) at step {step}"
        try:
            # Later steps are a courtesy: a schedule may overflow far past its horizon
            # (an exponential sweep), which is no mistake; only step 0 must evaluate.
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                value = schedule(np.int32(step))
        except Exception as error:  # noqa: BLE001 - reported with the argument's name
            if step:
                continue
            raise TypeError(
                f"{name} is a schedule that fails at step {step} ({type(error).__name__}: "
                f"{error}); pass a function step -> value such as jopt.constant_schedule(0.1)"
            ) from error
        if isinstance(value, jax.core.Tracer):
            return []
        if np.ndim(value) != 0:
            raise TypeError(
                f"{name} must be a schedule returning a scalar, got shape {np.shape(value)} at "
                f"step {step}; return one value per step"
            )
        x = float(np.asarray(value))
        if not math.isfinite(x):
            if step:
                continue
            raise ValueError(f"{label} must be finite, got {x!r}; fix the schedule")
        probed.append((label, x))
    return probed
