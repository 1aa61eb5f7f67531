"""Lion: the sign of an interpolated momentum (and its smooth variants)."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree
from jopt.base import GradientTransformation, Updates
from jopt.schedules._hyper import zero_count

_MODES = ("hard", "smooth", "refined")


class ScaleByLionState(NamedTuple):
    """State of :func:`scale_by_lion`."""

    count: jax.Array  # int32 scalar, number of updates seen (saturates)
    mu: Updates  # momentum, like params (mu_dtype if set)


def scale_by_lion(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.99,
    mu_dtype: Any = None,
    *,
    mode: Literal["hard", "smooth", "refined"] = "hard",
    smooth_beta: float | jax.Array = 1.0,
) -> GradientTransformation:
    r"""Scale updates by Lion: the sign of an interpolation of momentum and gradient.

    .. math::
      c_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad u_t = \operatorname{sign}(c_t), \quad
      m_t = \beta_2 m_{t-1} + (1-\beta_2) g_t

    ``mode="smooth"`` uses :math:`\tanh(\beta_s c_t)`; ``mode="refined"`` keeps
    :math:`c_t` where :math:`|c_t| < 1` and its sign elsewhere.

    Args:
      b1: :math:`\beta_1`, interpolation weight of the momentum, in [0, 1]; default 0.9.
      b2: :math:`\beta_2`, decay of the momentum, in [0, 1) (1 would freeze it at 0); default 0.99.
      mu_dtype: dtype of :math:`m`; None keeps the params' dtype.
      mode: ``"hard"`` (sign, default), ``"smooth"`` (tanh) or ``"refined"``.
      smooth_beta: :math:`\beta_s` > 0, sharpness of the tanh in ``"smooth"`` mode.

    References:
      Chen et al., `Symbolic Discovery of Optimization Algorithms
      <https://arxiv.org/abs/2302.06675>`_, 2023.
    """
    # b1 = 1 updates by the sign of the momentum alone, which still moves; b2 = 1 would freeze
    # the momentum at 0 (the update is then sign(g): chain scale_by_sign for signSGD).
    check.closed_unit_interval("b1", b1, "pass a value in [0, 1] such as 0.9")
    check.average_decay("b2", b2, "0.99")
    mu_dtype = check.dtype("mu_dtype", mu_dtype)
    check.one_of("mode", mode, _MODES)
    check.positive("smooth_beta", smooth_beta, "pass a value > 0 such as 1.0")
    squash = {
        "hard": jnp.sign,
        "smooth": lambda x: jnp.tanh(smooth_beta * x),
        "refined": lambda x: jnp.where(jnp.abs(x) < 1.0, x, jnp.sign(x)),
    }[mode]

    def init(params):
        return ScaleByLionState(count=zero_count(), mu=tree.zeros_like(params, dtype=mu_dtype))

    def update(updates, state, params=None):
        del params
        out = jax.tree.map(lambda g, m: squash((1.0 - b1) * g + b1 * m), updates, state.mu)
        mu = tree.cast(tree.update_moment(updates, state.mu, b2, 1), mu_dtype)
        return out, ScaleByLionState(count=tree.safe_increment(state.count), mu=mu)

    return GradientTransformation(init, update)
