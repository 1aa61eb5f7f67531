r"""Adam's relatives with other moment estimates: AdaBelief, Yogi, Adan, NovoGrad."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from jopt.base import GradientTransformationExtraArgs, Params, ScalarOrSchedule
from jopt.transforms._adan import scale_by_adan
from jopt.transforms._belief import scale_by_belief
from jopt.transforms._combining import chain
from jopt.transforms._novograd import scale_by_novograd
from jopt.transforms._regularization import add_decayed_weights
from jopt.transforms._scaling import scale_by_learning_rate
from jopt.transforms._yogi import scale_by_yogi


def adabelief(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-16,
    eps_root: float | jax.Array = 1e-16,
    *,
    nesterov: bool = False,
) -> GradientTransformationExtraArgs:
    r"""AdaBelief: :func:`jopt.scale_by_belief` then the learning rate.

    .. math::  w_{t+1} = w_t - \eta_t\, \hat m_t / (\sqrt{\hat s_t} + \epsilon)

    with :math:`s_t` the EMA of :math:`(g_t - m_t)^2` (see :func:`jopt.scale_by_belief`).

    Args:
      learning_rate: :math:`\eta`, a number >= 0 or a schedule.
      b1: decay of the gradient EMA, in [0, 1) (default 0.9).
      b2: decay of the prediction-error EMA, in [0, 1) (default 0.999).
      eps: added to the denominator, >= 0 (default 1e-16).
      eps_root: added to the second moment, >= 0 (default 1e-16).
      nesterov: use Nesterov momentum (default False).

    References:
      Zhuang et al., `AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed
      Gradients <https://arxiv.org/abs/2010.07468>`_, 2020.

    Example:
      >>> import jopt
      >>> tx = jopt.adabelief(1e-3)
    """
    return chain(
        scale_by_belief(b1=b1, b2=b2, eps=eps, eps_root=eps_root, nesterov=nesterov),
        scale_by_learning_rate(learning_rate),
    )


def yogi(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-3,
) -> GradientTransformationExtraArgs:
    r"""Yogi: :func:`jopt.scale_by_yogi` then the learning rate.

    .. math::
        v_t = v_{t-1} - (1-\beta_2)\operatorname{sign}(v_{t-1} - g_t^2)\, g_t^2, \qquad
        w_{t+1} = w_t - \eta_t\, \hat m_t / (\sqrt{\hat v_t} + \epsilon)

    Args:
      learning_rate: :math:`\eta`, a number >= 0 or a schedule.
      b1: decay of the gradient EMA, in [0, 1) (default 0.9).
      b2: rate of the second-moment update, in [0, 1) (default 0.999).
      eps: added to the denominator, >= 0 (default 1e-3).

    References:
      Zaheer et al., `Adaptive Methods for Nonconvex Optimization
      <https://papers.nips.cc/paper/8186-adaptive-methods-for-nonconvex-optimization>`_, 2018.
    """
    return chain(scale_by_yogi(b1=b1, b2=b2, eps=eps), scale_by_learning_rate(learning_rate))


def adan(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.98,
    b2: float | jax.Array = 0.92,
    b3: float | jax.Array = 0.99,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Any | Callable[[Params], Any] | None = None,
) -> GradientTransformationExtraArgs:
    r"""Adan: :func:`jopt.scale_by_adan`, decoupled weight decay, then the learning rate.

    .. math::  w_{t+1} = w_t - \eta_t \left(\frac{\hat m_t + (1-\beta_2)\hat v_t}
               {\sqrt{\hat n_t + \epsilon_{root}} + \epsilon} + \lambda w_t\right)

    Args:
      learning_rate: :math:`\eta`, a number >= 0 or a schedule.
      b1: decay of the gradient EMA, in [0, 1) (default 0.98).
      b2: decay of the gradient-difference EMA, in [0, 1) (default 0.92).
      b3: decay of the squared-term EMA, in [0, 1) (default 0.99).
      eps: added to the denominator, >= 0 (default 1e-8).
      eps_root: added inside the square root, >= 0 (default 1e-8).
      weight_decay: :math:`\lambda`, a number >= 0 or a schedule (default 0.0).
      mask: which params to decay: a pytree of bools or a function of the params
        (default None: all).

    References:
      Xie et al., `Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep
      Models <https://arxiv.org/abs/2208.06677>`_, 2022.
    """
    return chain(
        scale_by_adan(b1=b1, b2=b2, b3=b3, eps=eps, eps_root=eps_root),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


def novograd(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.25,
    eps: float | jax.Array = 1e-6,
    eps_root: float | jax.Array = 0.0,
    weight_decay: float | jax.Array = 0.0,
) -> GradientTransformationExtraArgs:
    r"""NovoGrad: :func:`jopt.scale_by_novograd` (layer-wise moments) then the learning rate.

    .. math::  m_t = \beta_1 m_{t-1} + \frac{g_t}{\sqrt{v_t} + \epsilon} + \lambda w_t,
               \qquad w_{t+1} = w_t - \eta_t\, m_t

    with :math:`v_t` the EMA of each layer's squared gradient norm.

    Args:
      learning_rate: :math:`\eta`, a number >= 0 or a schedule.
      b1: momentum, in [0, 1) (default 0.9).
      b2: decay of the squared-norm EMA, in [0, 1) (default 0.25).
      eps: added to the denominator, >= 0 (default 1e-6).
      eps_root: added inside the square root, >= 0 (default 0.0).
      weight_decay: :math:`\lambda`, a number >= 0 (default 0.0).

    References:
      Ginsburg et al., `Stochastic Gradient Methods with Layer-wise Adaptive Moments for
      Training of Deep Networks <https://arxiv.org/abs/1905.11286>`_, 2019.
    """
    return chain(
        scale_by_novograd(b1=b1, b2=b2, eps=eps, eps_root=eps_root, weight_decay=weight_decay),
        scale_by_learning_rate(learning_rate),
    )
