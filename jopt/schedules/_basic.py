r"""Constant, polynomial (and linear) and piecewise-constant schedules."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt.base import Schedule

_CONSTANT_FIX = "pass a number of steps >= 1; for a value that never changes use constant_schedule"


def plain_number(value: object) -> bool:
    """A Python int or float (not a bool, not an array): a value to branch on at build time."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def constant_schedule(value: jax.typing.ArrayLike) -> Schedule:
    """A schedule that returns ``value`` at every step, unchanged (not even converted).

    Args:
      value: the value to hold, finite.
    """
    check.finite("value", value)
    return lambda count: value


def _polynomial(init_value, end_value, power, transition_steps, transition_begin) -> Schedule:
    """:func:`polynomial_schedule` without validation, for the schedules built on it.

    A transition of no steps holds ``init_value``: the warmup of a schedule with no
    warmup is never reached, except at negative steps where it gives ``init_value``.
    """
    if transition_steps <= 0:
        return lambda count: init_value

    def schedule(count):
        elapsed = jnp.clip(count - transition_begin, 0, transition_steps)
        # Clamped: under jit, XLA may divide as a multiply by the reciprocal, making
        # 1 - T/T a tiny negative that a fractional power turns into NaN (as in optax).
        remaining = jnp.maximum(1 - elapsed / transition_steps, 0)
        return (init_value - end_value) * remaining**power + end_value

    return schedule


def polynomial_schedule(
    init_value: jax.typing.ArrayLike,
    end_value: jax.typing.ArrayLike,
    power: jax.typing.ArrayLike,
    transition_steps: int,
    transition_begin: int = 0,
) -> Schedule:
    r"""Go from ``init_value`` to ``end_value`` along a polynomial of the elapsed fraction.

    .. math::
      v(t) = \begin{cases}
        I & t < B \\
        (I - E)\,\bigl(1 - \tfrac{t - B}{T}\bigr)^{P} + E & B \le t < B + T \\
        E & t \ge B + T
      \end{cases}

    Args:
      init_value: :math:`I`, the value up to ``transition_begin``, finite.
      end_value: :math:`E`, the value from ``transition_begin + transition_steps`` on, finite.
      power: :math:`P`, > 0 (1 is linear).
      transition_steps: :math:`T`, the length of the transition, a whole number >= 1; a
        number <= 0 switches the transition off: the schedule holds ``init_value``
        (as optax documents).
      transition_begin: :math:`B`, steps to hold ``init_value`` first, >= 0. Default 0.
    """
    check.finite("init_value", init_value)
    check.finite("end_value", end_value)
    check.positive("power", power, "pass a positive power such as 1 (linear) or 2 (quadratic)")
    if not (plain_number(transition_steps) and transition_steps <= 0):
        check.whole_number("transition_steps", transition_steps, 1, _CONSTANT_FIX)
    check.whole_number("transition_begin", transition_begin, 0, "pass a step >= 0 such as 0")
    return _polynomial(init_value, end_value, power, transition_steps, transition_begin)


def linear_schedule(
    init_value: jax.typing.ArrayLike,
    end_value: jax.typing.ArrayLike,
    transition_steps: int,
    transition_begin: int = 0,
) -> Schedule:
    r"""Go linearly from ``init_value`` to ``end_value``: :func:`polynomial_schedule` with power 1.

    .. math::
      v(t) = I + \operatorname{clip}\bigl(\tfrac{t - B}{T}, 0, 1\bigr)\,(E - I)

    Args:
      init_value: :math:`I`, the value up to ``transition_begin``, finite.
      end_value: :math:`E`, the value from ``transition_begin + transition_steps`` on, finite.
      transition_steps: :math:`T`, the length of the transition, >= 1 (<= 0: the
        schedule holds ``init_value``, as optax documents).
      transition_begin: :math:`B`, steps to hold ``init_value`` first, >= 0. Default 0.
    """
    return polynomial_schedule(init_value, end_value, 1, transition_steps, transition_begin)


def _check_boundaries_and_scales(boundaries_and_scales: dict | None) -> None:
    """Boundaries are steps >= 0 and scales finite numbers >= 0 (shared with the interpolation)."""
    if boundaries_and_scales is None:
        return
    if not isinstance(boundaries_and_scales, dict):
        raise TypeError(
            "boundaries_and_scales must be a dict {step: scale} such as {1000: 0.1, 2000: 0.1}, "
            f"got {boundaries_and_scales!r}"
        )
    for boundary, scale in boundaries_and_scales.items():
        check.whole_number(
            "a boundary of boundaries_and_scales", boundary, 0, "use steps >= 0 as the dict's keys"
        )
        check.non_negative(
            f"boundaries_and_scales[{boundary!r}]",
            scale,
            "pass scales >= 0 such as 0.1 (they multiply the value)",
        )


def piecewise_constant_schedule(
    init_value: jax.typing.ArrayLike, boundaries_and_scales: dict[int, float] | None = None
) -> Schedule:
    r"""Multiply ``init_value`` by each scale from its boundary step on (step decay).

    .. math::  v(t) = I \prod_{i\,:\,t \ge b_i} s_i

    Args:
      init_value: :math:`I`, finite.
      boundaries_and_scales: ``{b_i: s_i}``, steps >= 0 mapped to scales >= 0; applied in
        step order, whatever the dict's order. None (the default) holds ``init_value``.
    """
    check.finite("init_value", init_value)
    _check_boundaries_and_scales(boundaries_and_scales)
    steps_and_scales = sorted((boundaries_and_scales or {}).items())

    def schedule(count):
        value = init_value
        for boundary, scale in steps_and_scales:
            # Written as a blend of the two branches, as optax does, so that the
            # rounding (and dtype) of every step is the same as optax's.
            before = jnp.maximum(0.0, jnp.sign(boundary - count))
            value = value * before + (1 - before) * scale * value
        return value

    return schedule
