"""Mechanic: learn a global scale of any base optimizer's updates online (a wrapper)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree as jtree
from jopt.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    OptState,
    Updates,
    with_extra_args_support,
)
from jopt.schedules._hyper import zero_count


class MechanicState(NamedTuple):
    """State of :func:`mechanize`."""

    base_optimizer_state: OptState  # the wrapped optimizer's state
    count: jax.Array  # int32 scalar, steps seen (saturates)
    r: jax.Array  # (num_betas,), lowest params dtype: discounted reward per beta
    m: jax.Array  # (num_betas,), lowest params dtype: running max of |h| per beta
    v: jax.Array  # (num_betas,), lowest params dtype: discounted sum of h^2 per beta
    s: jax.Array  # (num_betas,), lowest params dtype: the learned scales (sum = the scale)
    x0: Updates  # the parameters at the first step


def mechanize(
    base_optimizer: GradientTransformation,
    weight_decay: float = 1e-2,
    eps: float = 1e-8,
    s_init: float = 1e-6,
    num_betas: int = 6,
) -> GradientTransformationExtraArgs:
    r"""Wrap ``base_optimizer`` so that the scale of its updates is learned (Mechanic).

    With :math:`\Delta_t` minus the sum of the base optimizer's updates so far and
    :math:`S = \sum_i s_i`, the parameters are :math:`x_t = x_0 - S\,\Delta_t`. Each step,
    with :math:`\tilde g_t = g_t + \lambda S \|g_t\| x_t / (\|x_t\| + \epsilon)`,
    :math:`h_t = \langle \tilde g_t, \Delta_{t-1}\rangle` and
    :math:`\beta_i = 1 - 10^{-i}` (:math:`i = 1 \dots n`):

    .. math::

        m_i = \max(\beta_i m_i, |h_t| + \epsilon), \quad
        v_i = \beta_i^2 v_i + h_t^2, \quad
        r_i = \beta_i r_i + \operatorname{clip}(h_t, \pm m_i^{\text{old}})\, s_i, \\
        s_i = \frac{(s_{\text{init}}/n)\, m_i + \max(r_i, 0)}{\sqrt{v_i} + \epsilon}

    The update moves the parameters to :math:`x_0 - S\,\Delta_t`; needs ``params``.

    Args:
      base_optimizer: the optimizer whose updates are scaled (its learning rate is
        best left at 1).
      weight_decay: :math:`\lambda`, relative weight decay in :math:`h_t`, >= 0. Default 1e-2.
      eps: added to the denominators, >= 0. Default 1e-8.
      s_init: the initial total scale, > 0. Default 1e-6.
      num_betas: :math:`n`, the number of betas (each learns its own scale), >= 1. Default 6.

    References:
      Cutkosky, Defazio & Mehta, `Mechanic: A Learning Rate Tuner
      <https://arxiv.org/abs/2306.00144>`_, NeurIPS 2023.
    """
    check.transformation("base_optimizer", base_optimizer)
    check.non_negative("weight_decay", weight_decay)
    check.non_negative("eps", eps)
    check.positive("s_init", s_init, "pass a small positive value such as 1e-6")
    check.integer("num_betas", num_betas, minimum=1)
    base_optimizer = with_extra_args_support(base_optimizer)

    def init(params):
        low = jtree.dtype(params, "lowest")
        zeros = jnp.zeros([num_betas], low)
        return MechanicState(
            base_optimizer_state=base_optimizer.init(params),
            count=zero_count(),
            r=zeros,
            m=zeros,
            v=zeros,
            s=jnp.ones([num_betas], low) * s_init,
            x0=params,
        )

    def update(updates, state, params=None, **extra_args: Any):
        check.params_given("mechanize", params)
        base_updates, base_state = base_optimizer.update(
            updates, state.base_optimizer_state, params, **extra_args
        )
        # x0 is fixed by the first update's params, as in the reference implementation.
        x0 = jax.lax.cond(state.count == 0, lambda: params, lambda: state.x0)
        total = jnp.sum(state.s)
        decay = weight_decay * total * jtree.norm(updates) / (jtree.norm(params) + eps)
        decayed = jax.tree.map(lambda g, x: g + decay * x, updates, params)
        delta_prev = jax.tree.map(lambda x, start: (start - x) / (total + eps), params, x0)
        delta = jtree.sub(delta_prev, base_updates)
        h = jtree.vdot(decayed, delta_prev)
        clipped_h = jax.lax.clamp(-state.m, jnp.ones_like(state.m) * h, state.m)
        betas = jnp.array([1.0 - 0.1**i for i in range(1, num_betas + 1)], dtype=state.s.dtype)
        m = jnp.maximum(betas * state.m, jnp.abs(h) + eps)
        v = (betas**2) * state.v + h**2
        r = betas * state.r + clipped_h * state.s
        wealth = (s_init / jnp.size(betas)) * m + jnp.maximum(0.0, r)
        s = wealth / (jnp.sqrt(v) + eps)
        out = jax.tree.map(lambda start, d, x: (start - jnp.sum(s) * d) - x, x0, delta, params)
        return out, MechanicState(base_state, jtree.safe_increment(state.count), r, m, v, s, x0)

    return GradientTransformationExtraArgs(init, update)
