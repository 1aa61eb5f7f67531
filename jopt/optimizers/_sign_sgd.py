r"""Sign descent: step by the sign of the gradient (signSGD) or of its momentum (Signum)."""

from __future__ import annotations

from typing import Any

import jax

from jopt import _check as check
from jopt.base import GradientTransformationExtraArgs, ScalarOrSchedule
from jopt.transforms._combining import chain
from jopt.transforms._momentum import ema
from jopt.transforms._scaling import scale_by_learning_rate, scale_by_sign


def sign_sgd(learning_rate: ScalarOrSchedule) -> GradientTransformationExtraArgs:
    r"""signSGD: :func:`jopt.scale_by_sign` then the learning rate.

    .. math::  w_{t+1} = w_t - \eta_t \operatorname{sign}(g_t)

    Args:
      learning_rate: :math:`\eta`, a number >= 0 or a schedule.

    References:
      Bernstein et al., `signSGD: Compressed Optimisation for Non-Convex Problems
      <https://arxiv.org/abs/1802.04434>`_, 2018.
    """
    return chain(scale_by_sign(), scale_by_learning_rate(learning_rate))


def signum(
    learning_rate: ScalarOrSchedule,
    beta: float | jax.Array = 0.9,
    accumulator_dtype: Any = None,
) -> GradientTransformationExtraArgs:
    r"""Signum: the sign of an (undebiased) gradient EMA, times the learning rate.

    .. math::  m_t = \beta m_{t-1} + (1-\beta) g_t, \qquad
               w_{t+1} = w_t - \eta_t \operatorname{sign}(m_t)

    Args:
      learning_rate: :math:`\eta`, a number >= 0 or a schedule.
      beta: :math:`\beta`, decay of the EMA, in [0, 1] (default 0.9).
      accumulator_dtype: dtype of the EMA; None keeps the params' dtype.

    References:
      Bernstein et al., `signSGD: Compressed Optimisation for Non-Convex Problems
      <https://arxiv.org/abs/1802.04434>`_, 2018.
    """
    check.closed_unit_interval("beta", beta, "pass a value in [0, 1] such as 0.9")  # no debiasing
    # No debiasing: it rescales m_t by a positive number, which the sign ignores.
    return chain(
        ema(beta, debias=False, accumulator_dtype=accumulator_dtype),
        scale_by_sign(),
        scale_by_learning_rate(learning_rate),
    )
