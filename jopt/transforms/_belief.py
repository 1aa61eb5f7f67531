r"""AdaBelief: Adam whose second moment tracks the gradient's deviation from its EMA."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree
from jopt.base import GradientTransformation, Updates
from jopt.schedules._hyper import zero_count


class ScaleByBeliefState(NamedTuple):
    """State of :func:`scale_by_belief`."""

    count: jax.Array  # int32 scalar, number of updates seen (saturates)
    mu: Updates  # EMA of gradients, like params
    nu: Updates  # EMA of squared prediction errors (g - mu)^2, plus eps_root, like params


def scale_by_belief(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-16,
    eps_root: float | jax.Array = 1e-16,
    *,
    nesterov: bool = False,
) -> GradientTransformation:
    r"""Rescale updates by the AdaBelief "belief" in the current gradient.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
        s_t = \beta_2 s_{t-1} + (1-\beta_2) (g_t - m_t)^2 + \epsilon_{root}

        u_t = \frac{m_t / (1-\beta_1^t)}{\sqrt{s_t / (1-\beta_2^t)} + \epsilon}

    With ``nesterov`` the numerator is
    :math:`\beta_1 m_t/(1-\beta_1^{t+1}) + (1-\beta_1) g_t/(1-\beta_1^t)`.

    Args:
      b1: :math:`\beta_1`, decay of the gradient EMA, in [0, 1) (default 0.9).
      b2: :math:`\beta_2`, decay of the prediction-error EMA, in [0, 1) (default 0.999).
      eps: :math:`\epsilon`, added to the denominator, >= 0 (default 1e-16).
      eps_root: :math:`\epsilon_{root}`, added to :math:`s_t` (kept in the state), >= 0
        (default 1e-16); keep it > 0 when differentiating through the update.
      nesterov: use Nesterov momentum (default False).

    References:
      Zhuang et al., `AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed
      Gradients <https://arxiv.org/abs/2010.07468>`_, 2020.
    """
    check.unit_interval("b1", b1)
    check.unit_interval("b2", b2, "pass a value in [0, 1) such as 0.999")
    check.non_negative("eps", eps)
    check.non_negative("eps_root", eps_root)
    check.boolean("nesterov", nesterov)

    def init(params):
        return ScaleByBeliefState(
            count=zero_count(), mu=tree.zeros_like(params), nu=tree.zeros_like(params)
        )

    def update(updates, state, params=None):
        del params
        mu = tree.update_moment(updates, state.mu, b1, 1)
        nu = tree.update_moment_per_elem_norm(tree.sub(updates, mu), state.nu, b2, 2)
        nu = jax.tree.map(lambda v: v + eps_root, nu)
        count = tree.safe_increment(state.count)
        if nesterov:
            mu_hat = jax.tree.map(
                lambda m, g: b1 * m + (1 - b1) * g,
                tree.bias_correction(mu, b1, tree.safe_increment(count)),
                tree.bias_correction(updates, b1, count),
            )
        else:
            mu_hat = tree.bias_correction(mu, b1, count)
        nu_hat = tree.bias_correction(nu, b2, count)
        updates = jax.tree.map(lambda m, v: m / (jnp.sqrt(v) + eps), mu_hat, nu_hat)
        return updates, ScaleByBeliefState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init, update)
