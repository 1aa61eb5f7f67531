"""Run schedules one after another."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt.base import Schedule


def _join(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """:func:`join_schedules` without validation, for the schedules built on it."""

    def schedule(step: jax.typing.ArrayLike) -> jax.typing.ArrayLike:
        value = schedules[0](step)
        # Every schedule is evaluated and the last one whose boundary was reached
        # wins: branch-free, so it traces once and vmaps over steps.
        for boundary, later in zip(boundaries, schedules[1:], strict=True):
            value = jnp.where(step < boundary, value, later(step - boundary))
        return value

    return schedule


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    r"""Run ``schedules`` in turn, switching at each boundary step.

    .. math::  v(t) = s_k(t - b_k) \quad \text{for } b_k \le t < b_{k+1},\ b_0 = 0

    Each schedule sees the steps since its own boundary, so it starts from 0.

    Args:
      schedules: the schedules (functions ``step -> value``), at least one.
      boundaries: the steps at which to switch to the next schedule, one fewer than
        ``schedules``, each >= 0 and in increasing order.
    """
    for name, value in (("schedules", schedules), ("boundaries", boundaries)):
        if callable(value) or isinstance(value, str) or not isinstance(value, Iterable):
            raise TypeError(
                f"{name} must be a list, got {value!r}; pass e.g. "
                "join_schedules([warmup, decay], boundaries=[1000])"
            )
    schedules = list(schedules)
    boundaries = list(boundaries)
    if not schedules:
        raise ValueError(
            "schedules must hold at least one schedule, got []; pass a list of schedules"
        )
    for i, schedule in enumerate(schedules):
        check.function(f"schedules[{i}]", schedule, "lambda step: 0.1")
    if len(boundaries) != len(schedules) - 1:
        raise ValueError(
            f"boundaries must hold one step fewer than schedules ({len(schedules) - 1} for "
            f"{len(schedules)} schedules), got {len(boundaries)}: {boundaries!r}; pass the step "
            "at which each schedule after the first begins"
        )
    for i, boundary in enumerate(boundaries):
        check.whole_number(f"boundaries[{i}]", boundary, 0, "pass steps >= 0")
    if boundaries != sorted(boundaries):
        raise ValueError(
            f"boundaries must be in increasing order, got {boundaries!r}; pass the step at "
            "which each schedule begins, in the order of schedules"
        )
    return _join(schedules, boundaries)
