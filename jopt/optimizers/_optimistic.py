r"""Optimistic methods for min-max games: extrapolate with the change of the gradient."""

from __future__ import annotations

import warnings
from typing import Any

import jax

from jopt import _check as check
from jopt.base import GradientTransformationExtraArgs, ScalarOrSchedule
from jopt.transforms._adam import scale_by_adam
from jopt.transforms._combining import chain
from jopt.transforms._optimistic import scale_by_optimistic_gradient
from jopt.transforms._scaling import scale_by_learning_rate


def optimistic_gradient_descent(
    learning_rate: ScalarOrSchedule,
    alpha: float | jax.Array = 1.0,
    beta: float | jax.Array = 1.0,
) -> GradientTransformationExtraArgs:
    r"""Optimistic gradient descent (OGD): :func:`jopt.scale_by_optimistic_gradient`, then the rate.

    .. math::  w_{t+1} = w_t - \eta_t \left((\alpha + \beta) g_t - \beta g_{t-1}\right)

    Args:
      learning_rate: :math:`\eta`, a number >= 0 or a schedule.
      alpha: :math:`\alpha`, weight of the current gradient, a number (default 1.0).
      beta: :math:`\beta`, weight of the gradient change, a number (default 1.0).

    References:
      Mokhtari et al., `A Unified Analysis of Extra-gradient and Optimistic Gradient
      Methods for Saddle Point Problems <https://arxiv.org/abs/1901.08511>`_, 2019.
    """
    return chain(
        scale_by_optimistic_gradient(alpha=alpha, beta=beta),
        scale_by_learning_rate(learning_rate),
    )


def optimistic_adam_v2(
    learning_rate: ScalarOrSchedule,
    *,
    alpha: float | jax.Array = 1.0,
    beta: float | jax.Array = 1.0,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-08,
    eps_root: float | jax.Array = 0.0,
    mu_dtype: Any = None,
    nesterov: bool = True,
) -> GradientTransformationExtraArgs:
    r"""Optimistic Adam: optimistic extrapolation of Adam's direction :math:`d_t`.

    .. math::  w_{t+1} = w_t - \eta_t \left((\alpha + \beta) d_t - \beta d_{t-1}\right)

    with :math:`d_t` from :func:`jopt.scale_by_adam` (Nesterov by default).

    Args:
      learning_rate: :math:`\eta`, a number >= 0 or a schedule.
      alpha: :math:`\alpha`, weight of the current direction, a number (default 1.0).
      beta: :math:`\beta`, weight of the direction's change, a number (default 1.0).
      b1: decay of the gradient EMA, in [0, 1) (default 0.9).
      b2: decay of the squared-gradient EMA, in [0, 1) (default 0.999).
      eps: added to the denominator, >= 0 (default 1e-8).
      eps_root: added inside the square root, >= 0 (default 0.0).
      mu_dtype: dtype of the first moment; None keeps the params' dtype.
      nesterov: use Nesterov momentum in Adam (default True).

    References:
      Daskalakis et al., `Training GANs with Optimism <https://arxiv.org/abs/1711.00141>`_,
      2018.
    """
    return chain(
        scale_by_adam(
            b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nesterov=nesterov
        ),
        scale_by_optimistic_gradient(alpha=alpha, beta=beta),
        scale_by_learning_rate(learning_rate),
    )


def optimistic_adam(
    learning_rate: float | jax.Array,
    optimism: float | jax.Array | None = None,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-08,
    eps_root: float | jax.Array = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
) -> GradientTransformationExtraArgs:
    r"""Deprecated (as in optax): use :func:`jopt.optimistic_adam_v2`.

    .. math::  w_{t+1} = w_t - \left((\eta + o)\, d_t - o\, d_{t-1}\right)

    with :math:`d_t` from :func:`jopt.scale_by_adam` and optimism :math:`o`.

    Args:
      learning_rate: :math:`\eta`, a number >= 0 (no schedule).
      optimism: :math:`o`, a number; None means ``learning_rate`` (default None).
      b1: decay of the gradient EMA, in [0, 1) (default 0.9).
      b2: decay of the squared-gradient EMA, in [0, 1) (default 0.999).
      eps: added to the denominator, >= 0 (default 1e-8).
      eps_root: added inside the square root, >= 0 (default 0.0).
      mu_dtype: dtype of the first moment; None keeps the params' dtype.
      nesterov: use Nesterov momentum in Adam (default True).

    References:
      Daskalakis et al., `Training GANs with Optimism <https://arxiv.org/abs/1711.00141>`_,
      2018.
    """
    warnings.warn(
        "optimistic_adam is deprecated, please use `optimistic_adam_v2` instead "
        "(optimistic_adam_v2(learning_rate, alpha=..., beta=...) also takes schedules)",
        DeprecationWarning,
        stacklevel=2,
    )
    check.not_schedule(
        "learning_rate", learning_rate, "use optimistic_adam_v2, which takes schedules"
    )
    check.learning_rate("learning_rate", learning_rate)
    if optimism is None:
        optimism = learning_rate
    check.number("optimism", optimism)
    return chain(
        scale_by_adam(
            b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nesterov=nesterov
        ),
        scale_by_optimistic_gradient(alpha=learning_rate, beta=optimism),
        scale_by_learning_rate(1.0),  # only flips the sign: the rate is inside alpha
    )
