r"""Scaling by a constant, a schedule, the learning rate, or the sign.

Every optimizer ends with :func:`scale_by_learning_rate`: the blocks before it
compute a descent direction, this one turns it into a step
:math:`u_t = -\eta_t\, d_t` that :func:`jopt.apply_updates` adds to the params.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree
from jopt.base import (
    EmptyState,
    GradientTransformation,
    ScalarOrSchedule,
    Schedule,
    identity,
    init_empty_state,
)
from jopt.schedules._hyper import zero_count

ScaleState = EmptyState
"""State of :func:`scale` (optax's name)."""


class ScaleByScheduleState(NamedTuple):
    """State of :func:`scale_by_schedule` (and of a scheduled :func:`scale_by_learning_rate`)."""

    count: jax.Array  # int32 scalar, number of updates seen (saturates)


def scale(step_size: float | jax.Array) -> GradientTransformation:
    r"""Multiply every update by a fixed scalar: :math:`u_t = s\, g_t`.

    Args:
      step_size: :math:`s`, any finite number (negative flips the direction).

    References:
      Robbins & Monro, `A Stochastic Approximation Method
      <https://doi.org/10.1214/aoms/1177729586>`_, Ann. Math. Statist., 1951.
    """
    check.number("step_size", step_size)

    def update(updates, state, params=None):
        del params
        return jax.tree.map(lambda g: step_size * g, updates), state

    return GradientTransformation(init_empty_state, update)


def scale_by_schedule(step_size_fn: Schedule) -> GradientTransformation:
    r"""Multiply updates by a schedule of the step count: :math:`u_t = s(t)\, g_t`.

    The schedule is evaluated at the number of updates seen so far (0 on the first
    step), and its value is cast to each update's dtype.

    Args:
      step_size_fn: a pure function ``count -> step size``.

    References:
      Bengio, `Practical Recommendations for Gradient-Based Training of Deep Architectures
      <https://arxiv.org/abs/1206.5533>`_, 2012 (learning-rate schedules).
    """
    if not callable(step_size_fn):
        raise TypeError(
            f"step_size_fn must be a callable count -> step size, got {step_size_fn!r}; "
            "for a constant use jopt.scale(step_size)"
        )

    def init(params):
        del params
        return ScaleByScheduleState(count=zero_count())

    def update(updates, state, params=None):
        del params
        step_size = step_size_fn(state.count)
        updates = jax.tree.map(lambda g: jnp.array(step_size, dtype=g.dtype) * g, updates)
        return updates, ScaleByScheduleState(count=tree.safe_increment(state.count))

    return GradientTransformation(init, update)


def scale_by_learning_rate(
    learning_rate: ScalarOrSchedule | None = None,
    *,
    flip_sign: bool = True,
) -> GradientTransformation:
    r"""Multiply updates by the (negated) learning rate: :math:`u_t = -\eta_t\, g_t`.

    A number gives a stateless :func:`scale`; a schedule gives :func:`scale_by_schedule`
    (with a step counter in the state).

    Args:
      learning_rate: :math:`\eta`, a number >= 0 or a schedule; None means no scaling
        (the identity).
      flip_sign: multiply by :math:`-\eta` (default, gradient descent) rather than
        :math:`\eta`.

    References:
      Robbins & Monro, `A Stochastic Approximation Method
      <https://doi.org/10.1214/aoms/1177729586>`_, Ann. Math. Statist., 1951.
    """
    check.optional(check.learning_rate, "learning_rate", learning_rate)
    check.boolean("flip_sign", flip_sign)
    if learning_rate is None:
        return identity()
    sign = -1 if flip_sign else 1
    if callable(learning_rate):
        return scale_by_schedule(lambda count: sign * learning_rate(count))
    return scale(sign * learning_rate)


def scale_by_sign() -> GradientTransformation:
    r"""Replace every update by its sign: :math:`u_t = \operatorname{sign}(g_t)`.

    References:
      Bernstein et al., `signSGD: Compressed Optimisation for Non-Convex Problems
      <https://arxiv.org/abs/1802.04434>`_, 2018.
    """

    def update(updates, state, params=None):
        del params
        return jax.tree.map(jnp.sign, updates), state

    return GradientTransformation(init_empty_state, update)
