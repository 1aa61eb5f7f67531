r"""Cyclical schedules: one-cycle (linear or cosine) and SGDR's warm restarts."""

from __future__ import annotations

from collections.abc import Iterable

import jax

from jopt import _check as check
from jopt.base import Schedule
from jopt.schedules._interpolate import _interpolate
from jopt.schedules._join import _join
from jopt.schedules._warmup import warmup_cosine_decay_schedule


def _check_cycle(transition_steps, peak_value, pct_start, div_factor, final_div_factor) -> None:
    check.whole_number(
        "transition_steps", transition_steps, 1, "pass the length of the cycle in steps"
    )
    check.finite("peak_value", peak_value)
    check.open_interval("pct_start", pct_start, 0, 1, "pass a fraction such as 0.3")
    check.positive("div_factor", div_factor, "pass a factor > 0 such as 25.0")
    check.positive("final_div_factor", final_div_factor, "pass a factor > 0 such as 1e4")


def linear_onecycle_schedule(
    transition_steps: int,
    peak_value: jax.typing.ArrayLike,
    pct_start: float = 0.3,
    pct_final: float = 0.85,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
    r"""Three linear phases: up to ``peak_value``, back down, then down to a small final value.

    With :math:`v_0 = P / d`: from :math:`v_0` to :math:`P` over the first
    ``pct_start`` of ``transition_steps``, back to :math:`v_0` by ``pct_final`` of them,
    then to :math:`v_0 / f` at ``transition_steps``, held afterwards
    (:func:`piecewise_interpolate_schedule` with linear interpolation).

    Args:
      transition_steps: the length of the cycle, >= 1.
      peak_value: :math:`P`, the highest value, finite.
      pct_start: the fraction of the cycle spent going up, in (0, 1). Default 0.3.
      pct_final: the fraction at which the value is back to :math:`v_0`, in
        (``pct_start``, 1). Default 0.85.
      div_factor: :math:`d`, > 0. Default 25.
      final_div_factor: :math:`f`, > 0. Default 1e4.

    References:
      Smith & Topin, `Super-Convergence: Very Fast Training of Neural Networks Using Large
      Learning Rates <https://arxiv.org/abs/1708.07120>`_, 2017.
    """
    _check_cycle(transition_steps, peak_value, pct_start, div_factor, final_div_factor)
    check.open_interval(
        "pct_final", pct_final, 0, 1, "pass a fraction above pct_start such as 0.85"
    )
    up_end = int(pct_start * transition_steps)
    down_end = int(pct_final * transition_steps)
    if not up_end < down_end < transition_steps:
        # optax keys the phases by step in a dict, so phases that share a step vanish.
        raise ValueError(
            f"pct_final must leave each phase at least one step, got pct_final={pct_final!r} "
            f"with pct_start={pct_start!r} and transition_steps={transition_steps!r} (phases end "
            f"at steps {up_end}, {down_end}, {transition_steps}); pass pct_start < pct_final < 1 "
            "far enough apart, or more transition_steps"
        )
    return _interpolate(
        "linear",
        peak_value / div_factor,
        [
            (up_end, div_factor),
            (down_end, 1.0 / div_factor),
            (transition_steps, 1.0 / final_div_factor),
        ],
    )


def cosine_onecycle_schedule(
    transition_steps: int,
    peak_value: jax.typing.ArrayLike,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
    r"""Up to ``peak_value`` and down to a small final value, both along half a cosine.

    With :math:`v_0 = P / d`: from :math:`v_0` to :math:`P` over the first ``pct_start``
    of ``transition_steps``, then to :math:`v_0 / f` at ``transition_steps``, held
    afterwards (:func:`piecewise_interpolate_schedule` with cosine interpolation).

    Args:
      transition_steps: the length of the cycle, >= 1.
      peak_value: :math:`P`, the highest value, finite.
      pct_start: the fraction of the cycle spent going up, in (0, 1). Default 0.3.
      div_factor: :math:`d`, > 0. Default 25.
      final_div_factor: :math:`f`, > 0. Default 1e4.

    References:
      Smith & Topin, `Super-Convergence: Very Fast Training of Neural Networks Using Large
      Learning Rates <https://arxiv.org/abs/1708.07120>`_, 2017.
    """
    _check_cycle(transition_steps, peak_value, pct_start, div_factor, final_div_factor)
    return _interpolate(
        "cosine",
        peak_value / div_factor,
        [
            (int(pct_start * transition_steps), div_factor),
            (int(transition_steps), 1.0 / (div_factor * final_div_factor)),
        ],
    )


def sgdr_schedule(cosine_kwargs: Iterable[dict[str, jax.typing.ArrayLike]]) -> Schedule:
    r"""Stochastic gradient descent with warm restarts: cosine cycles, one after another.

    Cycle :math:`k` is ``warmup_cosine_decay_schedule(**cosine_kwargs[k])`` and lasts its
    ``decay_steps``; the last one holds its ``end_value`` afterwards.

    Args:
      cosine_kwargs: one dict of :func:`warmup_cosine_decay_schedule` arguments per cycle
        (``init_value``, ``peak_value``, ``warmup_steps``, ``decay_steps`` ...), at least one.

    References:
      Loshchilov & Hutter, `SGDR: Stochastic Gradient Descent with Warm Restarts
      <https://arxiv.org/abs/1608.03983>`_, ICLR 2017.
    """
    cycles = list(cosine_kwargs)
    if not cycles:
        raise ValueError(
            "cosine_kwargs must hold at least one cycle, got none; pass a list of dicts such as "
            "[dict(init_value=0.0, peak_value=0.1, warmup_steps=10, decay_steps=100)]"
        )
    schedules, boundaries, end = [], [], 0
    for i, kwargs in enumerate(cycles):
        if not isinstance(kwargs, dict) or "decay_steps" not in kwargs:
            raise ValueError(
                f"cosine_kwargs[{i}] must be a dict of warmup_cosine_decay_schedule arguments "
                f"with a decay_steps entry, got {kwargs!r}; pass e.g. "
                "dict(init_value=0.0, peak_value=0.1, warmup_steps=10, decay_steps=100)"
            )
        try:
            schedules.append(warmup_cosine_decay_schedule(**kwargs))
        except (TypeError, ValueError) as error:
            raise type(error)(f"cosine_kwargs[{i}]: {error}") from None
        end += kwargs["decay_steps"]
        boundaries.append(end)
    return _join(schedules, boundaries[:-1])
