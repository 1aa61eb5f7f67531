r"""Layer-wise adaptive optimizers: LARS, LAMB and Fromage scale each leaf by a trust ratio."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from jopt import _check as check
from jopt import tree
from jopt.base import (
    EmptyState,
    GradientTransformation,
    GradientTransformationExtraArgs,
    Params,
    ScalarOrSchedule,
)
from jopt.schedules._hyper import zero_count
from jopt.transforms._adam import scale_by_adam
from jopt.transforms._combining import chain
from jopt.transforms._layerwise import scale_by_trust_ratio
from jopt.transforms._masking import masked
from jopt.transforms._momentum import trace
from jopt.transforms._regularization import WeightDecaySchedule, add_decayed_weights
from jopt.transforms._scaling import scale_by_learning_rate

MaskOrFn = Any | Callable[[Params], Any] | None


def lars(
    learning_rate: ScalarOrSchedule,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: MaskOrFn = True,
    trust_coefficient: float | jax.Array = 0.001,
    eps: float | jax.Array = 0.0,
    trust_ratio_mask: MaskOrFn = True,
    momentum: float | jax.Array = 0.9,
    nesterov: bool = False,
) -> GradientTransformationExtraArgs:
    r"""LARS: weight decay, a layer-wise trust ratio, the learning rate, then momentum.

    .. math::
        d_t = g_t + \lambda w_t, \qquad
        m_t = \mu m_{t-1} - \eta_t\, c\,\frac{\|w_t\|}{\|d_t\| + \epsilon}\, d_t, \qquad
        w_{t+1} = w_t + m_t

    (see :func:`jopt.scale_by_trust_ratio`, :func:`jopt.trace`).

    Args:
      learning_rate: :math:`\eta`, a number >= 0 or a schedule.
      weight_decay: :math:`\lambda`, a number >= 0 or a schedule (default 0.0).
      weight_decay_mask: which params to decay: True (all), a pytree of bools, or a
        function of the params (default True).
      trust_coefficient: :math:`c`, >= 0 (default 0.001).
      eps: :math:`\epsilon`, added to the update norm, >= 0 (default 0.0).
      trust_ratio_mask: which params get the trust ratio, like ``weight_decay_mask``
        (default True).
      momentum: :math:`\mu`, in [0, 1] (default 0.9).
      nesterov: use Nesterov momentum (default False).

    References:
      You et al., `Large Batch Training of Convolutional Networks
      <https://arxiv.org/abs/1708.03888>`_, 2017.
    """
    check.closed_unit_interval(
        "momentum", momentum, "pass a value in [0, 1]; 1 keeps a running sum"
    )
    check.optional(check.mask, "weight_decay_mask", weight_decay_mask)
    check.mask("trust_ratio_mask", trust_ratio_mask)
    return chain(
        add_decayed_weights(weight_decay, mask=weight_decay_mask),
        masked(
            scale_by_trust_ratio(trust_coefficient=trust_coefficient, eps=eps), trust_ratio_mask
        ),
        scale_by_learning_rate(learning_rate),
        trace(decay=momentum, nesterov=nesterov),
    )


def lamb(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-6,
    eps_root: float | jax.Array = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: MaskOrFn = None,
) -> GradientTransformationExtraArgs:
    r"""LAMB: Adam with decoupled weight decay, then a layer-wise trust ratio.

    .. math::
        d_t = \frac{\hat m_t}{\sqrt{\hat v_t + \epsilon_{root}} + \epsilon} + \lambda w_t,
        \qquad w_{t+1} = w_t - \eta_t \frac{\|w_t\|}{\|d_t\|}\, d_t

    (see :func:`jopt.scale_by_adam`, :func:`jopt.scale_by_trust_ratio`).

    Args:
      learning_rate: :math:`\eta`, a number >= 0 or a schedule.
      b1: decay of the gradient EMA, in [0, 1) (default 0.9).
      b2: decay of the squared-gradient EMA, in [0, 1) (default 0.999).
      eps: added to the denominator, >= 0 (default 1e-6).
      eps_root: added inside the square root, >= 0 (default 0.0).
      weight_decay: :math:`\lambda`, a number >= 0 or a schedule (default 0.0).
      mask: which params to decay: a pytree of bools or a function of the params
        (default None: all).

    References:
      You et al., `Large Batch Optimization for Deep Learning: Training BERT in 76 minutes
      <https://arxiv.org/abs/1904.00962>`_, 2020.
    """
    return chain(
        scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root),
        add_decayed_weights(weight_decay=weight_decay, mask=mask),
        scale_by_trust_ratio(),
        scale_by_learning_rate(learning_rate),
    )


def fromage(
    learning_rate: ScalarOrSchedule, min_norm: float | jax.Array = 1e-6
) -> GradientTransformationExtraArgs:
    r"""Fromage: a trust-ratio step, then a shrink that keeps the weight norm in check.

    With :math:`\kappa_t = 1/\sqrt{1 + \eta_t^2}`:

    .. math::
        w_{t+1} = \kappa_t \left(w_t - \eta_t \frac{\|w_t\|}{\|g_t\|}\, g_t\right)

    (norms floored at ``min_norm``; see :func:`jopt.scale_by_trust_ratio`).

    Args:
      learning_rate: :math:`\eta`, a number >= 0 or a schedule.
      min_norm: floor of the weight and gradient norms, >= 0 (default 1e-6).

    References:
      Bernstein et al., `On the distance between two neural networks and the stability of
      learning <https://arxiv.org/abs/2002.03432>`_, 2020.
    """
    check.learning_rate("learning_rate", learning_rate)
    if callable(learning_rate):

        def shrink(count):
            return 1 / (1 + learning_rate(count) ** 2) ** 0.5

        def step(count):
            return shrink(count) * learning_rate(count)

        def decay(count):
            return shrink(count) - 1

    else:
        shrink = 1 / (1 + learning_rate**2) ** 0.5
        step, decay = learning_rate * shrink, shrink - 1
    return chain(
        scale_by_trust_ratio(min_norm),
        scale_by_learning_rate(step),
        _add_scaled_params(decay),
    )


def _add_scaled_params(factor: ScalarOrSchedule) -> GradientTransformation:
    """:math:`u_t = g_t + f_t w_t` for any sign of :math:`f` (Fromage's is negative, a shrink).

    :func:`jopt.add_decayed_weights` does the same but rejects negative decays, which
    are a user error everywhere but here. The state matches it.
    """
    scheduled = callable(factor)

    def init(params):
        del params
        return WeightDecaySchedule(count=zero_count()) if scheduled else EmptyState()

    def update(updates, state, params=None):
        check.params_given("fromage", params)
        if scheduled:
            return tree.add_scale(updates, factor(state.count), params), WeightDecaySchedule(
                tree.safe_increment(state.count)
            )
        return tree.add_scale(updates, factor, params), state

    return GradientTransformation(init, update)
