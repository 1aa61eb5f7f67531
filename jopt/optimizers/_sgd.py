"""Stochastic gradient descent, with optional heavy-ball or Nesterov momentum."""

from __future__ import annotations

from typing import Any

import jax

from jopt import _check as check
from jopt.base import GradientTransformationExtraArgs, ScalarOrSchedule, identity
from jopt.transforms._combining import chain
from jopt.transforms._momentum import trace
from jopt.transforms._scaling import scale_by_learning_rate


def sgd(
    learning_rate: ScalarOrSchedule,
    momentum: float | jax.Array | None = None,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
) -> GradientTransformationExtraArgs:
    r"""Stochastic gradient descent: :func:`jopt.trace` (if momentum) then the learning rate.

    .. math::  m_t = g_t + \mu\, m_{t-1}, \qquad w_{t+1} = w_t - \eta_t\, m_t

    (Nesterov: :math:`w_{t+1} = w_t - \eta_t (g_t + \mu m_t)`.)

    Args:
      learning_rate: :math:`\eta`, a number >= 0 or a schedule.
      momentum: :math:`\mu` in [0, 1] (1: a running sum), or None for plain SGD; default None.
      nesterov: use Nesterov momentum; default False.
      accumulator_dtype: dtype of the momentum buffer; None keeps the params' dtype.

    References:
      Robbins & Monro, `A Stochastic Approximation Method
      <https://doi.org/10.1214/aoms/1177729586>`_, 1951;
      Sutskever et al., `On the importance of initialization and momentum in deep
      learning <http://proceedings.mlr.press/v28/sutskever13.pdf>`_, 2013.

    Example:
      >>> import jopt
      >>> tx = jopt.sgd(0.1, momentum=0.9, nesterov=True)
    """
    check.learning_rate("learning_rate", learning_rate)
    check.optional(check.closed_unit_interval, "momentum", momentum)  # 1: a running sum
    check.boolean("nesterov", nesterov)
    check.dtype("accumulator_dtype", accumulator_dtype)
    momentum_tx = (
        identity()
        if momentum is None
        else trace(decay=momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype)
    )
    return chain(momentum_tx, scale_by_learning_rate(learning_rate))
