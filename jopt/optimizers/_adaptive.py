"""Adaptive step sizes from blocks other than :func:`jopt.scale_by_adam`: squared-gradient
statistics (RMSProp, AdaGrad, AdaDelta) and Adam's relatives with moment estimates of their
own (AdaBelief, Yogi, Adan, NovoGrad)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from jopt import _check as check
from jopt.base import GradientTransformationExtraArgs, Params, ScalarOrSchedule, identity
from jopt.transforms._adan import scale_by_adan
from jopt.transforms._belief import scale_by_belief
from jopt.transforms._combining import chain
from jopt.transforms._momentum import trace
from jopt.transforms._novograd import scale_by_novograd
from jopt.transforms._regularization import add_decayed_weights
from jopt.transforms._rms import scale_by_adadelta, scale_by_rms, scale_by_rss, scale_by_stddev
from jopt.transforms._scaling import scale_by_learning_rate
from jopt.transforms._yogi import scale_by_yogi

Float = float | jax.Array


def rmsprop(
    learning_rate: ScalarOrSchedule,
    decay: Float = 0.9,
    eps: Float = 1e-8,
    initial_scale: Float = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: Float | None = None,
    nesterov: bool = False,
    bias_correction: bool = False,
) -> GradientTransformationExtraArgs:
    r"""RMSProp: :func:`jopt.scale_by_rms` (or :func:`jopt.scale_by_stddev` if centered),
    the learning rate, then optional momentum (:func:`jopt.trace`).

    .. math::
      w_{t+1} = w_t - m_t, \quad
      m_t = \mu m_{t-1} + \eta_t\, g_t / \sqrt{\hat\nu_t + \epsilon}

    Args:
      learning_rate: :math:`\eta`, a number >= 0 or a schedule.
      decay: :math:`\rho` of the squared-gradient average, in [0, 1); default 0.9.
      eps: >= 0; default 1e-8.
      initial_scale: initial second moment >= 0; default 0.
      eps_in_sqrt: add eps inside the root (default) or outside.
      centered: divide by the standard deviation rather than the RMS; default False.
      momentum: :math:`\mu` in [0, 1], or None for none; default None.
      nesterov: Nesterov momentum; default False.
      bias_correction: debias the moments; default False.

    References:
      Tieleman & Hinton, `Lecture 6.5 - RMSProp
      <https://www.cs.toronto.edu/~tijmen/csc321/slides/lecture_slides_lec6.pdf>`_, 2012;
      Graves, `Generating Sequences With Recurrent Neural Networks
      <https://arxiv.org/abs/1308.0850>`_, 2013.
    """
    check.learning_rate("learning_rate", learning_rate)
    check.optional(check.closed_unit_interval, "momentum", momentum)  # a trace: 1 sums
    check.boolean("centered", centered)
    check.boolean("nesterov", nesterov)
    scaling = scale_by_stddev if centered else scale_by_rms
    return chain(
        scaling(decay, eps, initial_scale, eps_in_sqrt, bias_correction),
        scale_by_learning_rate(learning_rate),
        identity() if momentum is None else trace(decay=momentum, nesterov=nesterov),
    )


def adagrad(
    learning_rate: ScalarOrSchedule,
    initial_accumulator_value: Float = 0.1,
    eps: Float = 1e-7,
) -> GradientTransformationExtraArgs:
    r"""AdaGrad: :func:`jopt.scale_by_rss` then the learning rate.

    .. math::  w_{t+1} = w_t - \eta_t\, g_t / \sqrt{\textstyle\sum_{s\le t} g_s^2 + s_0 + \epsilon}

    Args:
      learning_rate: :math:`\eta`, a number >= 0 or a schedule.
      initial_accumulator_value: :math:`s_0` >= 0; default 0.1.
      eps: >= 0; default 1e-7.

    References:
      Duchi et al., `Adaptive Subgradient Methods for Online Learning and Stochastic
      Optimization <https://jmlr.org/papers/v12/duchi11a.html>`_, 2011.
    """
    check.learning_rate("learning_rate", learning_rate)
    return chain(
        scale_by_rss(initial_accumulator_value, eps), scale_by_learning_rate(learning_rate)
    )


def adadelta(
    learning_rate: ScalarOrSchedule | None = None,
    rho: Float = 0.9,
    eps: Float = 1e-6,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: Any | Callable[[Params], Any] | None = None,
) -> GradientTransformationExtraArgs:
    r"""AdaDelta: coupled weight decay, :func:`jopt.scale_by_adadelta`, the learning rate.

    .. math::  w_{t+1} = w_t - \eta_t\, \frac{\sqrt{E[x^2]_{t-1} + \epsilon}}
       {\sqrt{E[g^2]_t + \epsilon}} (g_t + \lambda w_t)

    Args:
      learning_rate: :math:`\eta`, a number >= 0, a schedule, or None (no scaling, as in
        the paper); default None.
      rho: decay of the running averages, in [0, 1); default 0.9.
      eps: >= 0; default 1e-6.
      weight_decay: :math:`\lambda` >= 0 (or a schedule), added to the gradient; default 0.
      weight_decay_mask: where to decay; None decays all.

    References:
      Zeiler, `ADADELTA: An Adaptive Learning Rate Method
      <https://arxiv.org/abs/1212.5701>`_, 2012.
    """
    check.optional(check.learning_rate, "learning_rate", learning_rate)
    check.optional(check.mask, "weight_decay_mask", weight_decay_mask)
    return chain(
        add_decayed_weights(weight_decay, mask=weight_decay_mask),
        scale_by_adadelta(rho=rho, eps=eps),
        scale_by_learning_rate(learning_rate),
    )


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
