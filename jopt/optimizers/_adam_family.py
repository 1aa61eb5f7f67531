"""Adam and its relatives: each is a moment-scaling block, optional decay, the learning rate.

Validation happens in the blocks; the optimizer's own checks only cover what the
blocks do not see (the learning rate).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from jopt import _check as check
from jopt.base import GradientTransformationExtraArgs, Params, ScalarOrSchedule
from jopt.transforms._adam import (
    scale_by_adam,
    scale_by_adamax,
    scale_by_amsgrad,
    scale_by_radam,
)
from jopt.transforms._combining import chain
from jopt.transforms._regularization import add_decayed_weights
from jopt.transforms._scaling import scale_by_learning_rate

Mask = Any | Callable[[Params], Any] | None
Float = float | jax.Array


def adam(
    learning_rate: ScalarOrSchedule,
    b1: Float = 0.9,
    b2: Float = 0.999,
    eps: Float = 1e-8,
    eps_root: Float = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> GradientTransformationExtraArgs:
    r"""Adam: :func:`jopt.scale_by_adam` then the learning rate.

    .. math::  w_{t+1} = w_t - \eta_t\, \hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon)

    Args:
      learning_rate: :math:`\eta`, a number >= 0 or a schedule.
      b1: first-moment decay in [0, 1); default 0.9.
      b2: second-moment decay in [0, 1); default 0.999.
      eps: >= 0, added outside the root; default 1e-8.
      eps_root: >= 0, added inside the root; default 0.
      mu_dtype: first-moment dtype; None keeps the params' dtype.
      nesterov: Nesterov momentum (NAdam); default False.
      nu_dtype: second-moment dtype (not in optax); None keeps the params' dtype.

    References:
      Kingma & Ba, `Adam: A Method for Stochastic Optimization
      <https://arxiv.org/abs/1412.6980>`_, 2014.

    Example:
      >>> import jopt
      >>> tx = jopt.adam(1e-3)
    """
    check.learning_rate("learning_rate", learning_rate)
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate),
    )


def adamw(
    learning_rate: ScalarOrSchedule,
    b1: Float = 0.9,
    b2: Float = 0.999,
    eps: Float = 1e-8,
    eps_root: Float = 0.0,
    mu_dtype: Any = None,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: Mask = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> GradientTransformationExtraArgs:
    r"""AdamW: Adam with decoupled weight decay.

    :func:`jopt.scale_by_adam`, then :func:`jopt.add_decayed_weights`, then the learning rate:

    .. math::  w_{t+1} = w_t - \eta_t \bigl(\hat m_t / (\sqrt{\hat v_t + \epsilon_{root}}
       + \epsilon) + \lambda w_t\bigr)

    Args:
      learning_rate: :math:`\eta`, a number >= 0 or a schedule.
      b1: first-moment decay in [0, 1); default 0.9.
      b2: second-moment decay in [0, 1); default 0.999.
      eps: >= 0, added outside the root; default 1e-8.
      eps_root: >= 0, added inside the root; default 0.
      mu_dtype: first-moment dtype; None keeps the params' dtype.
      weight_decay: :math:`\lambda` >= 0 (or a schedule); default 1e-4.
      mask: where to decay (pytree of bools or a function of the params); None decays all.
      nesterov: Nesterov momentum (NAdamW); default False.
      nu_dtype: second-moment dtype (not in optax); None keeps the params' dtype.

    References:
      Loshchilov & Hutter, `Decoupled Weight Decay Regularization
      <https://arxiv.org/abs/1711.05101>`_, 2019.
    """
    check.learning_rate("learning_rate", learning_rate)
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


def nadam(
    learning_rate: ScalarOrSchedule,
    b1: Float = 0.9,
    b2: Float = 0.999,
    eps: Float = 1e-8,
    eps_root: Float = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    nu_dtype: Any = None,
) -> GradientTransformationExtraArgs:
    r"""NAdam: :func:`adam` with Nesterov momentum.

    .. math::  m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
       v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,
       \quad w_{t+1} = w_t - \eta_t \frac{\beta_1 \hat m_t + (1-\beta_1) g_t / (1-\beta_1^t)}
       {\sqrt{\hat v_t + \epsilon_{root}} + \epsilon}

    Args:
      learning_rate: :math:`\eta`, a number >= 0 or a schedule.
      b1: first-moment decay in [0, 1); default 0.9.
      b2: second-moment decay in [0, 1); default 0.999.
      eps: >= 0, added outside the root; default 1e-8.
      eps_root: >= 0, added inside the root; default 0.
      mu_dtype: first-moment dtype; None keeps the params' dtype.
      nesterov: use Nesterov momentum; default True (False is :func:`adam`), as in optax.
      nu_dtype: second-moment dtype (not in optax); None keeps the params' dtype.

    References:
      Dozat, `Incorporating Nesterov Momentum into Adam
      <https://openreview.net/pdf?id=OM0jvwB8jIp57ZJjtNEZ>`_, 2016.
    """
    return adam(
        learning_rate, b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype
    )


def nadamw(
    learning_rate: ScalarOrSchedule,
    b1: Float = 0.9,
    b2: Float = 0.999,
    eps: Float = 1e-8,
    eps_root: Float = 0.0,
    mu_dtype: Any = None,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: Mask = None,
    *,
    nesterov: bool = True,
    nu_dtype: Any = None,
) -> GradientTransformationExtraArgs:
    r"""NAdamW: :func:`adamw` with Nesterov momentum.

    .. math::  m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
       v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,
       \quad w_{t+1} = w_t - \eta_t \frac{\beta_1 \hat m_t + (1-\beta_1) g_t / (1-\beta_1^t)}
       {\sqrt{\hat v_t + \epsilon_{root}} + \epsilon} - \eta_t \lambda w_t

    Args:
      learning_rate: :math:`\eta`, a number >= 0 or a schedule.
      b1: first-moment decay in [0, 1); default 0.9.
      b2: second-moment decay in [0, 1); default 0.999.
      eps: >= 0, added outside the root; default 1e-8.
      eps_root: >= 0, added inside the root; default 0.
      mu_dtype: first-moment dtype; None keeps the params' dtype.
      weight_decay: :math:`\lambda` >= 0 (or a schedule); default 1e-4.
      mask: where to decay (pytree of bools or a function of the params); None decays all.
      nesterov: use Nesterov momentum; default True (False is :func:`adamw`), as in optax.
      nu_dtype: second-moment dtype (not in optax); None keeps the params' dtype.

    References:
      Dozat, `Incorporating Nesterov Momentum into Adam
      <https://openreview.net/pdf?id=OM0jvwB8jIp57ZJjtNEZ>`_, 2016;
      Loshchilov & Hutter, `Decoupled Weight Decay Regularization
      <https://arxiv.org/abs/1711.05101>`_, 2019.
    """
    return adamw(
        learning_rate, b1, b2, eps, eps_root, mu_dtype, weight_decay, mask,
        nesterov=nesterov, nu_dtype=nu_dtype,
    )  # fmt: skip


def amsgrad(
    learning_rate: ScalarOrSchedule,
    b1: Float = 0.9,
    b2: Float = 0.999,
    eps: Float = 1e-8,
    eps_root: Float = 0.0,
    mu_dtype: Any = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
) -> GradientTransformationExtraArgs:
    r"""AMSGrad: :func:`jopt.scale_by_amsgrad` then the learning rate.

    .. math::  w_{t+1} = w_t - \eta_t\, \hat m_t / (\sqrt{\max_{s\le t} \hat v_s} + \epsilon)

    Args:
      learning_rate: :math:`\eta`, a number >= 0 or a schedule.
      b1: first-moment decay in [0, 1); default 0.9.
      b2: second-moment decay in [0, 1); default 0.999.
      eps: >= 0; default 1e-8.
      eps_root: >= 0; default 0.
      mu_dtype: first-moment dtype; None keeps the params' dtype.
      bias_correction_mu: debias the first moment; default True.
      bias_correction_nu: debias the second moment; default True.

    References:
      Reddi et al., `On the Convergence of Adam and Beyond
      <https://openreview.net/forum?id=ryQu7f-RZ>`_, 2018.
    """
    check.learning_rate("learning_rate", learning_rate)
    return chain(
        scale_by_amsgrad(b1, b2, eps, eps_root, mu_dtype, bias_correction_mu, bias_correction_nu),
        scale_by_learning_rate(learning_rate),
    )


def adamax(
    learning_rate: ScalarOrSchedule, b1: Float = 0.9, b2: Float = 0.999, eps: Float = 1e-8
) -> GradientTransformationExtraArgs:
    r"""Adamax: :func:`jopt.scale_by_adamax` then the learning rate.

    .. math::
      w_{t+1} = w_t - \eta_t\, \hat m_t / v_t, \quad
      v_t = \max(|g_t| + \epsilon, \beta_2 v_{t-1})

    Args:
      learning_rate: :math:`\eta`, a number >= 0 or a schedule.
      b1: first-moment decay in [0, 1); default 0.9.
      b2: infinity-norm decay in [0, 1); default 0.999.
      eps: >= 0; default 1e-8.

    References:
      Kingma & Ba, `Adam: A Method for Stochastic Optimization
      <https://arxiv.org/abs/1412.6980>`_, 2014.
    """
    check.learning_rate("learning_rate", learning_rate)
    return chain(scale_by_adamax(b1, b2, eps), scale_by_learning_rate(learning_rate))


def adamaxw(
    learning_rate: ScalarOrSchedule,
    b1: Float = 0.9,
    b2: Float = 0.999,
    eps: Float = 1e-8,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: Mask = None,
) -> GradientTransformationExtraArgs:
    r"""Adamax with decoupled weight decay: :func:`adamax` plus :func:`jopt.add_decayed_weights`.

    .. math::  w_{t+1} = w_t - \eta_t (\hat m_t / v_t + \lambda w_t)

    Args:
      learning_rate: :math:`\eta`, a number >= 0 or a schedule.
      b1: first-moment decay in [0, 1); default 0.9.
      b2: infinity-norm decay in [0, 1); default 0.999.
      eps: >= 0; default 1e-8.
      weight_decay: :math:`\lambda` >= 0 (or a schedule); default 1e-4.
      mask: where to decay; None decays all.

    References:
      Loshchilov & Hutter, `Decoupled Weight Decay Regularization
      <https://arxiv.org/abs/1711.05101>`_, 2019.
    """
    check.learning_rate("learning_rate", learning_rate)
    return chain(
        scale_by_adamax(b1, b2, eps),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


def radam(
    learning_rate: ScalarOrSchedule,
    b1: Float = 0.9,
    b2: Float = 0.999,
    eps: Float = 1e-8,
    eps_root: Float = 0.0,
    threshold: Float = 5.0,
    *,
    nesterov: bool = False,
) -> GradientTransformationExtraArgs:
    r"""Rectified Adam: :func:`jopt.scale_by_radam` then the learning rate.

    Args:
      learning_rate: :math:`\eta`, a number >= 0 or a schedule.
      b1: first-moment decay in [0, 1); default 0.9.
      b2: second-moment decay in [0, 1); default 0.999.
      eps: >= 0; default 1e-8.
      eps_root: >= 0; default 0.
      threshold: variance tractability threshold on :math:`\rho_t`; default 5.
      nesterov: Nesterov momentum; default False.

    References:
      Liu et al., `On the Variance of the Adaptive Learning Rate and Beyond
      <https://arxiv.org/abs/1908.03265>`_, 2020.
    """
    check.learning_rate("learning_rate", learning_rate)
    return chain(
        scale_by_radam(b1, b2, eps, eps_root, threshold, nesterov=nesterov),
        scale_by_learning_rate(learning_rate),
    )
