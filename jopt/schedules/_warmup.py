r"""A linear warmup from ``init_value`` to ``peak_value``, then a constant or a decay."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt.base import Schedule
from jopt.schedules._basic import _polynomial
from jopt.schedules._decay import _EXPONENT_FIX, _cosine, _exponential
from jopt.schedules._join import _join

_WARMUP_FIX = "pass the length of the linear warmup in steps, >= 0 (0 for no warmup)"


def _check_warmup(init_value, peak_value, warmup_steps) -> float | None:
    """Check the warmup's arguments; return ``warmup_steps`` (None if not inspectable)."""
    check.finite("init_value", init_value)
    check.finite("peak_value", peak_value)
    return check.whole_number("warmup_steps", warmup_steps, 0, _WARMUP_FIX)


def warmup_constant_schedule(
    init_value: jax.typing.ArrayLike,
    peak_value: jax.typing.ArrayLike,
    warmup_steps: int,
) -> Schedule:
    r"""Go linearly from ``init_value`` to ``peak_value`` in ``warmup_steps``, then hold it.

    .. math::  v(t) = I + \operatorname{clip}\bigl(\tfrac{t}{W}, 0, 1\bigr)\,(P - I)

    Args:
      init_value: :math:`I`, the value at step 0, finite (0 is common).
      peak_value: :math:`P`, the value from ``warmup_steps`` on, finite.
      warmup_steps: :math:`W`, the length of the warmup, >= 1.
    """
    check.finite("init_value", init_value)
    check.finite("peak_value", peak_value)
    # optax holds init_value forever when warmup_steps is 0, never reaching the peak.
    check.whole_number(
        "warmup_steps",
        warmup_steps,
        1,
        "pass the length of the warmup, >= 1; for no warmup use constant_schedule(peak_value)",
    )
    return _polynomial(init_value, peak_value, 1, warmup_steps, 0)


def _alpha(peak_value, end_value):
    """``end_value`` as a fraction of ``peak_value`` (0 when the peak is 0)."""
    peak = check.number("peak_value", peak_value) if jnp.ndim(peak_value) == 0 else None
    if peak is not None:
        return 0.0 if peak == 0.0 else end_value / peak_value
    # A traced or non-scalar peak: the same rule, without branching on its value.
    safe_peak = jnp.where(peak_value == 0.0, 1.0, peak_value)
    return jnp.where(peak_value == 0.0, 0.0, end_value / safe_peak)


def warmup_cosine_decay_schedule(
    init_value: jax.typing.ArrayLike,
    peak_value: jax.typing.ArrayLike,
    warmup_steps: int,
    decay_steps: int,
    end_value: jax.typing.ArrayLike = 0.0,
    exponent: jax.typing.ArrayLike = 1.0,
) -> Schedule:
    r"""Linear warmup to ``peak_value``, then a cosine decay to ``end_value``.

    .. math::
      v(t) = \begin{cases}
        I + \tfrac{t}{W}(P - I) & t < W \\
        E + (P - E)\Bigl(\tfrac12\bigl(1 + \cos\tfrac{\pi \min(t - W,\, D - W)}{D - W}\bigr)
        \Bigr)^{p} & t \ge W
      \end{cases}

    Args:
      init_value: :math:`I`, the value at step 0, finite (0 is common).
      peak_value: :math:`P`, the value at the end of the warmup, finite.
      warmup_steps: :math:`W`, the length of the warmup, >= 0 (0 for none).
      decay_steps: :math:`D`, the length of the whole schedule, warmup included, > W.
      end_value: :math:`E`, the value from step :math:`D` on, finite. Default 0.
      exponent: :math:`p`, the power of the cosine factor, > 0. Default 1.

    References:
      Loshchilov & Hutter, `SGDR: Stochastic Gradient Descent with Warm Restarts
      <https://arxiv.org/abs/1608.03983>`_, ICLR 2017.
    """
    w = _check_warmup(init_value, peak_value, warmup_steps)
    d = check.whole_number(
        "decay_steps", decay_steps, 1, "pass the length of the whole schedule in steps"
    )
    if w is not None and d is not None and d <= w:
        raise ValueError(
            f"decay_steps must be > warmup_steps ({warmup_steps!r}), got {decay_steps!r}; "
            "decay_steps counts the whole schedule, warmup included: pass warmup_steps + "
            "the number of decay steps"
        )
    check.finite("end_value", end_value)
    check.positive("exponent", exponent, _EXPONENT_FIX)
    warmup = _polynomial(init_value, peak_value, 1, warmup_steps, 0)
    decay = _cosine(peak_value, decay_steps - warmup_steps, _alpha(peak_value, end_value), exponent)
    return _join([warmup, decay], [warmup_steps])


def warmup_exponential_decay_schedule(
    init_value: jax.typing.ArrayLike,
    peak_value: jax.typing.ArrayLike,
    warmup_steps: int,
    transition_steps: int,
    decay_rate: jax.typing.ArrayLike,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: jax.typing.ArrayLike | None = None,
) -> Schedule:
    r"""Linear warmup to ``peak_value``, then :func:`exponential_decay` from it.

    .. math::
      v(t) = \begin{cases}
        I + \tfrac{t}{W}(P - I) & t < W \\
        P\, r^{\max(t - W - B,\, 0)/T} & t \ge W
      \end{cases}

    Args:
      init_value: :math:`I`, the value at step 0, finite (0 is common).
      peak_value: :math:`P`, the value at the end of the warmup, finite.
      warmup_steps: :math:`W`, the length of the warmup, >= 0 (0 for none).
      transition_steps: :math:`T`, steps per factor of ``decay_rate``, >= 1.
      decay_rate: :math:`r`, > 0 (< 1 decays, > 1 grows).
      transition_begin: :math:`B`, steps after the warmup to hold ``peak_value``, >= 0.
        Default 0.
      staircase: decay at whole multiples of ``transition_steps`` only. Default False.
      end_value: the bound the decay stops at, finite, or None (the default) for no bound.
    """
    _check_warmup(init_value, peak_value, warmup_steps)
    check.whole_number(
        "transition_steps", transition_steps, 1, "pass the number of steps per factor of decay_rate"
    )
    check.positive("decay_rate", decay_rate, "pass a factor > 0 such as 0.5 (decay) or 2.0")
    check.whole_number("transition_begin", transition_begin, 0, "pass a step >= 0 such as 0")
    check.boolean("staircase", staircase)
    check.optional(check.finite, "end_value", end_value)
    warmup = _polynomial(init_value, peak_value, 1, warmup_steps, 0)
    decay = _exponential(
        peak_value, transition_steps, decay_rate, transition_begin, staircase, end_value
    )
    return _join([warmup, decay], [warmup_steps])
