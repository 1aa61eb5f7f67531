r"""Steps of a sign times a step size: signSGD (the gradient's sign), Signum (its momentum's),
Lion (an interpolated momentum's) and Rprop (per-coordinate step sizes adapted by sign flips)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from jopt import _check as check
from jopt.base import GradientTransformationExtraArgs, Params, ScalarOrSchedule
from jopt.transforms._combining import chain
from jopt.transforms._lion import scale_by_lion
from jopt.transforms._momentum import ema
from jopt.transforms._regularization import add_decayed_weights
from jopt.transforms._rprop import scale_by_rprop
from jopt.transforms._scaling import scale, scale_by_learning_rate, scale_by_sign


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
      beta: :math:`\beta`, decay of the EMA, in [0, 1) (default 0.9).
      accumulator_dtype: dtype of the EMA; None keeps the params' dtype.

    References:
      Bernstein et al., `signSGD: Compressed Optimisation for Non-Convex Problems
      <https://arxiv.org/abs/1802.04434>`_, 2018.
    """
    check.average_decay("beta", beta)  # an EMA: 1 freezes it at 0, and every update is 0
    # No debiasing: it rescales m_t by a positive number, which the sign ignores.
    return chain(
        ema(beta, debias=False, accumulator_dtype=accumulator_dtype),
        scale_by_sign(),
        scale_by_learning_rate(learning_rate),
    )


def lion(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.99,
    mu_dtype: Any = None,
    weight_decay: ScalarOrSchedule = 1e-3,
    mask: Any | Callable[[Params], Any] | None = None,
) -> GradientTransformationExtraArgs:
    r"""Lion: :func:`jopt.scale_by_lion`, decoupled weight decay, then the learning rate.

    .. math::  w_{t+1} = w_t - \eta_t \bigl(\operatorname{sign}(\beta_1 m_{t-1}
       + (1-\beta_1) g_t) + \lambda w_t\bigr)

    Lion's steps have unit size per coordinate: use a learning rate 3-10x smaller
    and a weight decay 3-10x larger than for AdamW.

    Args:
      learning_rate: :math:`\eta`, a number >= 0 or a schedule.
      b1: interpolation weight of the momentum, in [0, 1); default 0.9.
      b2: momentum decay, in [0, 1); default 0.99.
      mu_dtype: momentum dtype; None keeps the params' dtype.
      weight_decay: :math:`\lambda` >= 0 (or a schedule); default 1e-3.
      mask: where to decay; None decays all.

    References:
      Chen et al., `Symbolic Discovery of Optimization Algorithms
      <https://arxiv.org/abs/2302.06675>`_, 2023.
    """
    check.learning_rate("learning_rate", learning_rate)
    return chain(
        scale_by_lion(b1=b1, b2=b2, mu_dtype=mu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


def rprop(
    learning_rate: float | jax.Array,
    eta_minus: float | jax.Array = 0.5,
    eta_plus: float | jax.Array = 1.2,
    min_step_size: float | jax.Array = 1e-6,
    max_step_size: float | jax.Array = 50.0,
) -> GradientTransformationExtraArgs:
    r"""Rprop: per-element step sizes adapted by the gradient's sign (:func:`jopt.scale_by_rprop`).

    .. math::  w_{t+1} = w_t - d_t, \qquad d_t = \eta_t \operatorname{sign}(g_t)

    with :math:`\eta_t` multiplied by ``eta_plus`` while the sign holds and by
    ``eta_minus`` when it flips (then the step is skipped).

    Args:
      learning_rate: the initial step size, a number > 0.
      eta_minus: factor after a sign change, in [0, 1] (default 0.5).
      eta_plus: factor while the sign holds, >= 1 (default 1.2).
      min_step_size: smallest step size, >= 0 (default 1e-6).
      max_step_size: largest step size, >= ``min_step_size`` (default 50.0).

    References:
      Riedmiller & Braun, `A Direct Adaptive Method for Faster Backpropagation Learning:
      The RPROP Algorithm <https://ieeexplore.ieee.org/document/298623>`_, 1993.
    """
    return chain(
        scale_by_rprop(
            learning_rate=learning_rate,
            eta_minus=eta_minus,
            eta_plus=eta_plus,
            min_step_size=min_step_size,
            max_step_size=max_step_size,
        ),
        scale(-1.0),
    )
