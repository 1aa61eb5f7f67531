r"""Rprop: per-element step sizes that grow while the gradient keeps its sign."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree
from jopt.base import GradientTransformation, Updates


class ScaleByRpropState(NamedTuple):
    """State of :func:`scale_by_rprop`."""

    step_sizes: Updates  # current step size of every element, like params
    prev_updates: Updates  # last step taken (0 after a sign change), like params


def scale_by_rprop(
    learning_rate: float | jax.Array,
    eta_minus: float | jax.Array = 0.5,
    eta_plus: float | jax.Array = 1.2,
    min_step_size: float | jax.Array = 1e-6,
    max_step_size: float | jax.Array = 50.0,
) -> GradientTransformation:
    r"""Rescale updates by resilient backpropagation (Rprop, the iRprop- variant).

    With :math:`s = g_t \cdot d_{t-1}` (the previous step :math:`d`):

    .. math::
        \eta_t = \begin{cases}
          \eta_{t-1} & s = 0 \\
          \operatorname{clip}(\eta_+\,\eta_{t-1}, \eta_{min}, \eta_{max}) & s > 0 \\
          \operatorname{clip}(\eta_-\,\eta_{t-1}, \eta_{min}, \eta_{max}) & s < 0
        \end{cases}, \qquad
        d_t = \begin{cases} 0 & s < 0 \\ \eta_t \operatorname{sign}(g_t) & \text{else} \end{cases}

    and the update is :math:`u_t = d_{t-1}` where :math:`s \ge 0`, else 0 (the sign is
    flipped by :func:`jopt.rprop`).

    Args:
      learning_rate: initial step size of every element, a number > 0 (no schedule: the
        step sizes adapt on their own).
      eta_minus: factor applied after a sign change, in [0, 1] (default 0.5).
      eta_plus: factor applied while the sign is kept, >= 1 (default 1.2).
      min_step_size: smallest step size, >= 0 (default 1e-6).
      max_step_size: largest step size, >= ``min_step_size`` (default 50.0).

    References:
      Riedmiller & Braun, `A Direct Adaptive Method for Faster Backpropagation Learning:
      The RPROP Algorithm <https://ieeexplore.ieee.org/document/298623>`_, 1993;
      Igel & Hüsken, `Improving the Rprop Learning Algorithm
      <http://citeseerx.ist.psu.edu/viewdoc/summary?doi=10.1.1.17.1332>`_, 2000.
    """
    check.not_schedule(
        "learning_rate", learning_rate, "Rprop's learning_rate is only the initial step size"
    )
    check.positive("learning_rate", learning_rate, "pass an initial step size such as 1e-3")
    check.closed_unit_interval("eta_minus", eta_minus, "pass a factor in [0, 1] such as 0.5")
    check.interval("eta_plus", eta_plus, 1.0, float("inf"), "pass a factor >= 1 such as 1.2")
    check.non_negative("min_step_size", min_step_size)
    low = check.number("min_step_size", min_step_size)
    check.interval(
        "max_step_size",
        max_step_size,
        0.0 if low is None else low,
        float("inf"),
        "pass a value >= min_step_size such as 50.0",
    )

    def init(params):
        return ScaleByRpropState(
            step_sizes=tree.full_like(params, learning_rate),
            prev_updates=tree.zeros_like(params),
        )

    def update(updates, state, params=None):
        del params
        agree = jax.tree.map(lambda g, d: g * d, updates, state.prev_updates)
        step_sizes = jax.tree.map(
            lambda s, eta: jnp.where(
                s == 0,
                eta,
                jnp.clip(
                    eta * jnp.where(s > 0, eta_plus, eta_minus),
                    min=min_step_size,
                    max=max_step_size,
                ),
            ),
            agree,
            state.step_sizes,
        )
        steps = jax.tree.map(
            lambda s, g, eta: jnp.where(s < 0, jnp.zeros_like(g), eta * jnp.sign(g)),
            agree,
            updates,
            step_sizes,
        )
        # iRprop-: after a sign change the step is skipped (and forgotten) rather than undone.
        updates = jax.tree.map(
            lambda s, d: jnp.where(s < 0, jnp.zeros_like(d), d), agree, state.prev_updates
        )
        return updates, ScaleByRpropState(step_sizes=step_sizes, prev_updates=steps)

    return GradientTransformation(init, update)
