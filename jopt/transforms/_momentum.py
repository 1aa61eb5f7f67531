r"""Momentum: a trace (heavy ball / Nesterov) or an exponential moving average of updates.

The two differ only in how the new gradient enters:
``trace = decay * trace + g`` while ``ema = decay * ema + (1 - decay) * g``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from jopt import _check as check
from jopt import tree
from jopt.base import GradientTransformation, Updates
from jopt.schedules._hyper import zero_count


class TraceState(NamedTuple):
    """State of :func:`trace`."""

    trace: Updates  # running sum of past updates, like params (accumulator_dtype if set)


class EmaState(NamedTuple):
    """State of :func:`ema`."""

    count: jax.Array  # int32 scalar, number of updates seen (saturates)
    ema: Updates  # moving average of updates, like params (accumulator_dtype if set)


def trace(
    decay: float | jax.Array,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
) -> GradientTransformation:
    r"""Heavy-ball momentum: accumulate a decaying sum of past updates.

    .. math::
      m_t = g_t + \beta\, m_{t-1}, \qquad
      u_t = \begin{cases} g_t + \beta\, m_t & \text{nesterov} \\ m_t & \text{otherwise}\end{cases}

    Args:
      decay: :math:`\beta`, in [0, 1]; 1 keeps a running sum.
      nesterov: use Nesterov's look-ahead form.
      accumulator_dtype: dtype of :math:`m` (e.g. ``jnp.bfloat16`` to save memory);
        None keeps the params' dtype.

    References:
      Polyak, `Some methods of speeding up the convergence of iteration methods
      <https://doi.org/10.1016/0041-5553(64)90137-5>`_, 1964;
      Sutskever et al., `On the importance of initialization and momentum in deep
      learning <http://proceedings.mlr.press/v28/sutskever13.pdf>`_, 2013.
    """
    check.closed_unit_interval("decay", decay, "pass a value in [0, 1]; 1 keeps a running sum")
    check.boolean("nesterov", nesterov)
    accumulator_dtype = check.dtype("accumulator_dtype", accumulator_dtype)

    def init(params):
        return TraceState(trace=tree.zeros_like(params, dtype=accumulator_dtype))

    def update(updates, state, params=None):
        del params
        new_trace = tree.add_scale(updates, decay, state.trace)
        out = tree.add_scale(updates, decay, new_trace) if nesterov else new_trace
        return out, TraceState(trace=tree.cast(new_trace, accumulator_dtype))

    return GradientTransformation(init, update)


def ema(
    decay: float | jax.Array,
    debias: bool = True,
    accumulator_dtype: Any = None,
) -> GradientTransformation:
    r"""Exponential moving average of updates, optionally debiased.

    .. math::
      m_t = \beta\, m_{t-1} + (1-\beta)\, g_t, \qquad
      u_t = \begin{cases} m_t / (1-\beta^t) & \text{debias} \\ m_t & \text{otherwise}\end{cases}

    Args:
      decay: :math:`\beta`, in [0, 1) (1 would freeze the average at 0).
      debias: divide by :math:`1-\beta^t` so early averages are not biased to zero.
      accumulator_dtype: dtype of :math:`m`; None keeps the params' dtype.

    References:
      Kingma & Ba, `Adam: A Method for Stochastic Optimization
      <https://arxiv.org/abs/1412.6980>`_, 2014 (the debiasing).
    """
    check.boolean("debias", debias)
    check.average_decay("decay", decay)  # 1: the average stays 0 (debiased: 1 - 1**t = 0)
    accumulator_dtype = check.dtype("accumulator_dtype", accumulator_dtype)

    def init(params):
        return EmaState(count=zero_count(), ema=tree.zeros_like(params, dtype=accumulator_dtype))

    def update(updates, state, params=None):
        del params
        new_ema = tree.update_moment(updates, state.ema, decay, 1)
        count = tree.safe_increment(state.count)
        out = tree.bias_correction(new_ema, decay, count) if debias else new_ema
        return out, EmaState(count=count, ema=tree.cast(new_ema, accumulator_dtype))

    return GradientTransformation(init, update)
