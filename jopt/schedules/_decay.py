r"""Exponential and cosine decay."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt.base import Schedule
from jopt.schedules._basic import plain_number

# 0 never decays and a negative power makes the end of the cosine infinite.
_EXPONENT_FIX = "pass a power > 0 such as 1.0; for a value that never changes use constant_schedule"


def _exponential(
    init_value, transition_steps, decay_rate, transition_begin, staircase, end_value
) -> Schedule:
    """:func:`exponential_decay` without validation, for the schedules built on it."""

    def schedule(count):
        elapsed = count - transition_begin
        exponent = elapsed / transition_steps
        if staircase:
            exponent = jnp.floor(exponent)
        value = jnp.where(elapsed <= 0, init_value, init_value * jnp.power(decay_rate, exponent))
        if end_value is None:
            return value
        # end_value bounds the decay from below, or a growth (decay_rate > 1) from above.
        return jnp.where(
            decay_rate < 1.0, jnp.maximum(value, end_value), jnp.minimum(value, end_value)
        )

    return schedule


def exponential_decay(
    init_value: jax.typing.ArrayLike,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: jax.typing.ArrayLike | None = None,
) -> Schedule:
    r"""Multiply ``init_value`` by ``decay_rate`` every ``transition_steps`` steps, smoothly.

    .. math::
      v(t) = \begin{cases}
        I & t \le B \\
        I\, r^{(t - B)/T} & t > B
      \end{cases}

    With ``staircase`` the exponent is rounded down, so the value drops in steps. With
    ``end_value`` the result is clipped at it: from below when :math:`r < 1`, from above
    when :math:`r > 1`.

    Args:
      init_value: :math:`I`, finite.
      transition_steps: :math:`T`, steps per factor of ``decay_rate``, >= 1. A number
        <= 0 gives a schedule that holds ``init_value``, as optax's does.
      decay_rate: :math:`r`, > 0 (< 1 decays, > 1 grows). 0 gives a schedule that holds
        ``init_value``, as optax's does.
      transition_begin: :math:`B`, steps to hold ``init_value`` first, >= 0. Default 0.
      staircase: decay at whole multiples of ``transition_steps`` only. Default False.
      end_value: the bound the value stops at, finite, or None (the default) for no bound.
    """
    check.finite("init_value", init_value)
    if (plain_number(transition_steps) and transition_steps <= 0) or (
        plain_number(decay_rate) and decay_rate == 0
    ):
        return lambda count: init_value  # optax's answer to a decay switched off
    check.whole_number(
        "transition_steps",
        transition_steps,
        1,
        "pass the number of steps per factor of decay_rate, >= 1; for a value that never "
        "changes use constant_schedule",
    )
    check.positive(
        "decay_rate",
        decay_rate,
        "pass a factor > 0 such as 0.5 (decay) or 2.0 (growth); for a value that never "
        "changes use constant_schedule",
    )
    check.whole_number("transition_begin", transition_begin, 0, "pass a step >= 0 such as 0")
    check.boolean("staircase", staircase)
    check.optional(check.finite, "end_value", end_value)
    return _exponential(
        init_value, transition_steps, decay_rate, transition_begin, staircase, end_value
    )


def _cosine(init_value, decay_steps, alpha, exponent) -> Schedule:
    """:func:`cosine_decay_schedule` without validation, for the schedules built on it."""
    # Python ints become floats: as int32 they would overflow past 2**31 steps.
    if isinstance(decay_steps, int):
        decay_steps = float(decay_steps)

    def schedule(count):
        if isinstance(count, int):
            count = float(count)
        count = jnp.minimum(count, decay_steps)
        cosine = 0.5 * (1 + jnp.cos(jnp.pi * count / decay_steps))
        return init_value * ((1 - alpha) * cosine**exponent + alpha)

    return schedule


def cosine_decay_schedule(
    init_value: jax.typing.ArrayLike,
    decay_steps: int,
    alpha: jax.typing.ArrayLike = 0.0,
    exponent: jax.typing.ArrayLike = 1.0,
) -> Schedule:
    r"""Half a cosine from ``init_value`` down to ``alpha * init_value`` over ``decay_steps``.

    .. math::
      v(t) = I\Bigl[(1 - \alpha)\Bigl(\tfrac12\bigl(1 + \cos\tfrac{\pi \min(t, T)}{T}\bigr)
             \Bigr)^{p} + \alpha\Bigr]

    Args:
      init_value: :math:`I`, finite.
      decay_steps: :math:`T`, the length of the decay, > 0.
      alpha: :math:`\alpha`, the final value as a fraction of ``init_value``, in [0, 1].
        Default 0.
      exponent: :math:`p`, sharpens (> 1) or flattens (< 1) the curve, > 0. Default 1.

    References:
      Loshchilov & Hutter, `SGDR: Stochastic Gradient Descent with Warm Restarts
      <https://arxiv.org/abs/1608.03983>`_, ICLR 2017.
    """
    check.finite("init_value", init_value)
    check.whole_number("decay_steps", decay_steps, 1, "pass the length of the decay in steps")
    check.closed_unit_interval(
        "alpha", alpha, "pass the final value as a fraction of init_value, such as 0.0 or 0.1"
    )
    check.positive("exponent", exponent, _EXPONENT_FIX)
    return _cosine(init_value, decay_steps, alpha, exponent)
