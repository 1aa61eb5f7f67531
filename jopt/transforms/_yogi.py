r"""Yogi: Adam with an additive, sign-controlled second-moment update."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree
from jopt.base import GradientTransformation
from jopt.schedules._hyper import zero_count
from jopt.transforms._adam import ScaleByAdamState

# optax's scale_by_yogi keeps a ScaleByAdamState (count, mu, nu); so does jopt's, so that
# code checking the state's type or class name works with either library.
ScaleByYogiState = ScaleByAdamState


def scale_by_yogi(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-3,
    eps_root: float | jax.Array = 0.0,
    initial_accumulator_value: float | jax.Array = 1e-6,
) -> GradientTransformation:
    r"""Rescale updates by the Yogi algorithm.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
        v_t = v_{t-1} - (1-\beta_2)\,\operatorname{sign}(v_{t-1} - |g_t|^2)\,|g_t|^2

        u_t = \frac{m_t / (1-\beta_1^t)}{\sqrt{v_t / (1-\beta_2^t) + \epsilon_{root}} + \epsilon}

    Both moments start at ``initial_accumulator_value``. Complex gradients use
    :math:`|g|^2`.

    Args:
      b1: :math:`\beta_1`, decay of the gradient EMA, in [0, 1) (default 0.9).
      b2: :math:`\beta_2`, rate of the second-moment update, in [0, 1) (default 0.999).
      eps: :math:`\epsilon`, added to the denominator, >= 0 (default 1e-3).
      eps_root: :math:`\epsilon_{root}`, added inside the square root, >= 0 (default 0.0).
      initial_accumulator_value: starting value of both moments, >= 0 (default 1e-6).

    References:
      Zaheer et al., `Adaptive Methods for Nonconvex Optimization
      <https://papers.nips.cc/paper/8186-adaptive-methods-for-nonconvex-optimization>`_, 2018.
    """
    check.unit_interval("b1", b1)
    check.unit_interval("b2", b2, "pass a value in [0, 1) such as 0.999")
    check.non_negative("eps", eps)
    check.non_negative("eps_root", eps_root)
    check.non_negative("initial_accumulator_value", initial_accumulator_value)

    def init(params):
        return ScaleByAdamState(
            count=zero_count(),
            mu=tree.full_like(params, initial_accumulator_value),
            nu=tree.full_like(params, initial_accumulator_value),
        )

    def update(updates, state, params=None):
        del params
        mu = tree.update_moment(updates, state.mu, b1, 1)
        nu = jax.tree.map(
            lambda g, v: v - (1 - b2) * jnp.sign(v - tree.abs_sq(g)) * tree.abs_sq(g),
            updates,
            state.nu,
        )
        count = tree.safe_increment(state.count)
        mu_hat = tree.bias_correction(mu, b1, count)
        nu_hat = tree.bias_correction(nu, b2, count)
        updates = jax.tree.map(lambda m, v: m / (jnp.sqrt(v + eps_root) + eps), mu_hat, nu_hat)
        return updates, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init, update)
