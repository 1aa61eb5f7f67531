"""Sign-based optimizers: Lion."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from jopt import _check as check
from jopt.base import GradientTransformationExtraArgs, Params, ScalarOrSchedule
from jopt.transforms._combining import chain
from jopt.transforms._lion import scale_by_lion
from jopt.transforms._regularization import add_decayed_weights
from jopt.transforms._scaling import scale_by_learning_rate


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
