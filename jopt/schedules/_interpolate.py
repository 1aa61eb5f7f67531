r"""Piecewise schedules that interpolate, linearly or along a cosine, between boundary values."""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt.base import Schedule
from jopt.schedules._basic import _check_boundaries_and_scales


def _linear(start, end, fraction):
    return (end - start) * fraction + start


def _cosine(start, end, fraction):
    return end + (start - end) / 2.0 * (jnp.cos(jnp.pi * fraction) + 1)


_INTERPOLATIONS = {"linear": _linear, "cosine": _cosine}


def _interpolate(interpolate_type, init_value, steps_and_scales) -> Schedule:
    """:func:`piecewise_interpolate_schedule` without validation, for the one-cycle schedules."""
    interpolate = _INTERPOLATIONS[interpolate_type]
    boundaries = tuple(b for b, _ in steps_and_scales)
    scales = tuple(s for _, s in steps_and_scales)

    def schedule(count):
        # Segment k runs from starts[k] to ends[k] and goes from values[k] to values[k+1];
        # every segment is evaluated and the one holding the step is kept (branch-free).
        edges = jnp.stack((0, *boundaries))
        values = jnp.cumprod(jnp.stack((init_value, *scales)))
        starts, ends = edges[:-1], edges[1:]
        lengths = jnp.maximum(ends - starts, 1)
        inside = jnp.logical_and(starts <= count, count < ends)
        segments = interpolate(values[:-1], values[1:], (count - starts) / lengths)
        return inside.dot(segments) + (edges[-1] <= count) * values[-1]

    return schedule


def piecewise_interpolate_schedule(
    interpolate_type: Literal["linear", "cosine"],
    init_value: jax.typing.ArrayLike,
    boundaries_and_scales: dict[int, float] | None = None,
) -> Schedule:
    r"""Interpolate between the running products of the scales, from boundary to boundary.

    With boundaries :math:`0 = b_0 < b_1 < \dots < b_n`, values :math:`v_0 = I` and
    :math:`v_k = v_{k-1} s_k`, and :math:`f = (t - b_{k-1}) / (b_k - b_{k-1})`:

    .. math::
      v(t) = \begin{cases}
        v_{k-1} + f\,(v_k - v_{k-1}) & \text{linear} \\
        v_k + \tfrac12 (v_{k-1} - v_k)(1 + \cos \pi f) & \text{cosine}
      \end{cases}
      \quad b_{k-1} \le t < b_k, \qquad v(t) = v_n \text{ for } t \ge b_n

    Note that it interpolates between the accumulated values, not between the scales.
    Steps before 0 give 0, as in optax.

    Args:
      interpolate_type: ``"linear"`` or ``"cosine"``.
      init_value: :math:`I`, finite.
      boundaries_and_scales: ``{b_k: s_k}``, steps >= 0 mapped to scales >= 0; applied in
        step order. None (the default) holds ``init_value``.
    """
    check.one_of("interpolate_type", interpolate_type, tuple(_INTERPOLATIONS))
    check.finite("init_value", init_value)
    _check_boundaries_and_scales(boundaries_and_scales)
    return _interpolate(interpolate_type, init_value, sorted((boundaries_and_scales or {}).items()))
