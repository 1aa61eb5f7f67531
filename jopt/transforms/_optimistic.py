r"""Optimistic gradients: extrapolate with the change of the gradient (for min-max games)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree
from jopt.base import GradientTransformation, Updates


class ScaleByOptimisticGradientState(NamedTuple):
    """State of :func:`scale_by_optimistic_gradient`."""

    is_initial_step: jax.Array  # bool scalar, True until the first update
    previous_gradient: Updates  # the last gradient seen, like params


def scale_by_optimistic_gradient(
    alpha: float | jax.Array = 1.0, beta: float | jax.Array = 1.0
) -> GradientTransformation:
    r"""Generalized optimistic gradient: :math:`u_t = (\alpha + \beta)\,g_t - \beta\,g_{t-1}`.

    On the first step :math:`g_{t-1} = g_t`, so the update is :math:`\alpha g_1`.

    Args:
      alpha: :math:`\alpha`, weight of the current gradient, a number (default 1.0).
      beta: :math:`\beta`, weight of the gradient change ("optimism"), a number (default 1.0).

    References:
      Mokhtari et al., `A Unified Analysis of Extra-gradient and Optimistic Gradient
      Methods for Saddle Point Problems <https://arxiv.org/abs/1901.08511>`_, 2019.
    """
    for name, value in (("alpha", alpha), ("beta", beta)):
        check.not_schedule(name, value, "optimistic gradients weigh gradients by constants")
        check.number(name, value)

    def init(params):
        return ScaleByOptimisticGradientState(
            is_initial_step=jnp.array(True), previous_gradient=tree.zeros_like(params)
        )

    def update(updates, state, params=None):
        del params

        def extrapolate(g, previous):
            previous = jnp.where(state.is_initial_step, g, previous)
            return (alpha + beta) * g - beta * previous

        new_updates = jax.tree.map(extrapolate, updates, state.previous_gradient)
        return new_updates, ScaleByOptimisticGradientState(
            is_initial_step=jnp.array(False), previous_gradient=updates
        )

    return GradientTransformation(init, update)
