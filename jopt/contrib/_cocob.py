"""COCOB-Backprop: learning-rate-free training by betting on the gradients (coin betting)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree as jtree
from jopt.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    ScalarOrSchedule,
    Updates,
)
from jopt.transforms import add_decayed_weights, chain, scale_by_learning_rate


class COCOBState(NamedTuple):
    """State of :func:`scale_by_cocob`."""

    init_particles: Updates  # the initial parameters x_0, like params
    cumulative_gradients: Updates  # minus the sum of the gradients, like params
    scale: Updates  # L: largest absolute gradient seen per entry (starts at eps), like params
    subgradients: Updates  # G: sum of absolute gradients, like params
    reward: Updates  # R: accumulated reward (wealth) of the bets, like params


def scale_by_cocob(alpha: float = 100.0, eps: float = 1e-8) -> GradientTransformation:
    r"""Rescale updates by COCOB-Backprop: each coordinate bets a fraction of its wealth.

    With :math:`\theta_t = -\sum_{s\le t} g_s`,

    .. math::

        L_t = \max(L_{t-1}, |g_t|), \quad G_t = G_{t-1} + |g_t|, \quad
        R_t = \max\big(R_{t-1} - g_t (x_t - x_0), 0\big), \\
        x_{t+1} = x_0 + \frac{\theta_t}{L_t \max(G_t + L_t, \alpha L_t)} (L_t + R_t),
        \quad u_t = x_{t+1} - x_t

    The update is already a step (not a gradient): chain it after the learning rate,
    as :func:`cocob` does. Needs ``params``.

    Args:
      alpha: :math:`\alpha`, bounds the fraction bet early on, > 0. Default 100.
      eps: initial :math:`L_0`, > 0 (avoids dividing by zero). Default 1e-8.

    References:
      Orabona & Tommasi, `Training Deep Networks without Learning Rates Through Coin
      Betting <https://arxiv.org/abs/1705.07795>`_, NeurIPS 2017.
    """
    check.positive("alpha", alpha)
    check.positive("eps", eps, "pass a small positive value such as 1e-8")

    def init(params):
        zeros = jtree.zeros_like(params)
        return COCOBState(
            init_particles=params,
            cumulative_gradients=zeros,
            scale=jtree.scale(eps, jtree.ones_like(params)),
            subgradients=zeros,
            reward=zeros,
        )

    def update(updates, state, params=None):
        check.params_given("scale_by_cocob", params)
        scale = jax.tree.map(lambda big_l, g: jnp.maximum(big_l, jnp.abs(g)), state.scale, updates)
        subgradients = jax.tree.map(
            lambda big_g, g: big_g + jnp.abs(g), state.subgradients, updates
        )
        reward = jax.tree.map(
            lambda r, g, x, x0: jnp.maximum(r - g * (x - x0), 0),
            state.reward, updates, params, state.init_particles,
        )  # fmt: skip
        theta = jtree.sub(state.cumulative_gradients, updates)

        def step(x, x0, th, big_l, big_g, r):
            fraction = th / (big_l * jnp.maximum(big_g + big_l, alpha * big_l))
            return -x + (x0 + fraction * (big_l + r))

        out = jax.tree.map(step, params, state.init_particles, theta, scale, subgradients, reward)
        new_state = COCOBState(state.init_particles, theta, scale, subgradients, reward)
        return out, new_state

    return GradientTransformation(init, update)


def cocob(
    learning_rate: ScalarOrSchedule = 1.0,
    alpha: float = 100.0,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    mask: Any | Callable[[Any], Any] | None = None,
) -> GradientTransformationExtraArgs:
    r"""COCOB-Backprop, a learning-rate-free optimizer (see :func:`scale_by_cocob`).

    The gradient (plus :math:`\lambda x_t`) is multiplied by the learning rate *without*
    flipping its sign, then betted on: keep ``learning_rate=1`` unless you know why.

    Args:
      learning_rate: a multiplier of the gradients, >= 0 or a schedule. Default 1.
      alpha: bounds the fraction bet early on, > 0. Default 100.
      eps: initial scale, > 0. Default 1e-8.
      weight_decay: :math:`\lambda`, added to the gradient, >= 0. Default 0.
      mask: tree of booleans (or a function of the params) selecting the leaves to decay.

    References:
      Orabona & Tommasi, `Training Deep Networks without Learning Rates Through Coin
      Betting <https://arxiv.org/abs/1705.07795>`_, NeurIPS 2017.
    """
    check.learning_rate("learning_rate", learning_rate)
    return chain(
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate, flip_sign=False),
        scale_by_cocob(alpha, eps),
    )
