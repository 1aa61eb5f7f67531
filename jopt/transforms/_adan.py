r"""Adan: adaptive Nesterov momentum from EMAs of gradients and of their differences."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree
from jopt.base import GradientTransformation, Updates
from jopt.schedules._hyper import zero_count


class ScaleByAdanState(NamedTuple):
    """State of :func:`scale_by_adan` (field names follow optax's and the paper's)."""

    m: Updates  # EMA of gradients, like params
    v: Updates  # EMA of gradient differences g_t - g_{t-1}, like params
    n: Updates  # EMA of squared (g_t + (1 - b2)(g_t - g_{t-1})), like params
    g: Updates  # previous gradient, like params
    t: jax.Array  # int32 scalar, number of updates seen (saturates)


def scale_by_adan(
    b1: float | jax.Array = 0.98,
    b2: float | jax.Array = 0.92,
    b3: float | jax.Array = 0.99,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
) -> GradientTransformation:
    r"""Rescale updates by the Adan algorithm (Algorithm 1 of the paper).

    With :math:`\Delta_t = g_t - g_{t-1}` (0 on the first step):

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2)\Delta_t, \quad
        n_t = \beta_3 n_{t-1} + (1-\beta_3)\,|g_t + (1-\beta_2)\Delta_t|^2

        u_t = \frac{\hat m_t + (1-\beta_2)\hat v_t}{\sqrt{\hat n_t + \epsilon_{root}} + \epsilon}

    where hats are bias-corrected by :math:`1-\beta_i^t`.

    Args:
      b1: :math:`\beta_1`, decay of the gradient EMA, in [0, 1) (default 0.98).
      b2: :math:`\beta_2`, decay of the difference EMA, in [0, 1) (default 0.92).
      b3: :math:`\beta_3`, decay of the squared-term EMA, in [0, 1) (default 0.99).
      eps: :math:`\epsilon`, added to the denominator, >= 0 (default 1e-8).
      eps_root: :math:`\epsilon_{root}`, added inside the square root, >= 0 (default 0.0).

    References:
      Xie et al., `Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep
      Models <https://arxiv.org/abs/2208.06677>`_, 2022.
    """
    check.unit_interval("b1", b1, "pass a value in [0, 1) such as 0.98")
    check.unit_interval("b2", b2, "pass a value in [0, 1) such as 0.92")
    check.unit_interval("b3", b3, "pass a value in [0, 1) such as 0.99")
    check.non_negative("eps", eps)
    check.non_negative("eps_root", eps_root)

    def init(params):
        zeros = tree.zeros_like(params)
        return ScaleByAdanState(m=zeros, v=zeros, n=zeros, g=zeros, t=zero_count())

    def update(updates, state, params=None):
        del params
        g = updates
        diff = tree.where(state.t == 0, tree.zeros_like(g), tree.sub(g, state.g))
        m = tree.update_moment(g, state.m, b1, 1)
        v = tree.update_moment(diff, state.v, b2, 1)
        n = tree.update_moment_per_elem_norm(tree.add_scale(g, 1 - b2, diff), state.n, b3, 2)
        t = tree.safe_increment(state.t)
        direction = tree.add_scale(
            tree.bias_correction(m, b1, t), 1 - b2, tree.bias_correction(v, b2, t)
        )
        denom = jax.tree.map(lambda x: jnp.sqrt(x + eps_root) + eps, tree.bias_correction(n, b3, t))
        return tree.div(direction, denom), ScaleByAdanState(m=m, v=v, n=n, g=g, t=t)

    return GradientTransformation(init, update)
