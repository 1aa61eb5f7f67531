r"""Memory-light adaptive optimizers: Adafactor (factored moments) and SM3 (per-axis maxima)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt.base import GradientTransformationExtraArgs, Params, ScalarOrSchedule
from jopt.transforms._clipping import clip_by_block_rms
from jopt.transforms._combining import chain
from jopt.transforms._factored import scale_by_factored_rms
from jopt.transforms._layerwise import scale_by_param_block_rms
from jopt.transforms._momentum import ema
from jopt.transforms._regularization import add_decayed_weights
from jopt.transforms._scaling import scale, scale_by_learning_rate
from jopt.transforms._sm3 import scale_by_sm3


def adafactor(
    learning_rate: ScalarOrSchedule | None = None,
    min_dim_size_to_factor: int = 128,
    decay_rate: float | jax.Array = 0.8,
    decay_offset: int | jax.Array = 0,
    multiply_by_parameter_scale: bool = True,
    clipping_threshold: float | jax.Array | None = 1.0,
    momentum: float | jax.Array | None = None,
    dtype_momentum: Any = jnp.float32,
    weight_decay_rate: ScalarOrSchedule | None = None,
    eps: float | jax.Array = 1e-30,
    factored: bool = True,
    weight_decay_mask: Any | Callable[[Params], Any] | None = None,
) -> GradientTransformationExtraArgs:
    r"""Adafactor: factored RMS scaling, block clipping, relative step size, optional momentum.

    .. math::
        d_t = \operatorname{clip}_\tau\!\left(g_t / \sqrt{\hat V_t}\right)\,
              \eta_t\, \max(\mathrm{rms}(w_t), 10^{-3}), \qquad
        w_{t+1} = w_t - (\mathrm{EMA}_\mu(d)_t + \lambda_t w_t)

    with :math:`\hat V_t` the factored second moment of :func:`jopt.scale_by_factored_rms`;
    each optional stage is dropped when its argument is None/False.

    Args:
      learning_rate: :math:`\eta`, a number >= 0, a schedule, or None (no scaling; the
        relative step alone sets the size). Default None.
      min_dim_size_to_factor: factor a matrix only if its two largest axes are at least
        this long, an integer >= 1 (default 128).
      decay_rate: exponent of the second-moment decay :math:`1 - t^{-c}`, >= 0 (default 0.8).
      decay_offset: step at which the decay schedule starts, e.g. for fine-tuning, >= 0
        (default 0).
      multiply_by_parameter_scale: scale by each leaf's parameter RMS (default True).
      clipping_threshold: :math:`\tau`, largest update RMS per leaf, > 0, or None
        (default 1.0).
      momentum: :math:`\mu`, EMA decay of the updates in [0, 1), or None (default None).
      dtype_momentum: dtype of the momentum buffer (default float32).
      weight_decay_rate: :math:`\lambda`, a number >= 0, a schedule, or None (default None).
      eps: added to the squared gradients, >= 0 (default 1e-30).
      factored: factor the second moment of matrices (default True).
      weight_decay_mask: which params to decay: a pytree of bools or a function of the
        params (default None: all).

    References:
      Shazeer & Stern, `Adafactor: Adaptive Learning Rates with Sublinear Memory Cost
      <https://arxiv.org/abs/1804.04235>`_, 2018.
    """
    check.whole_number("decay_offset", decay_offset, 0, "pass the first step to count, e.g. 0")
    check.non_negative("eps", eps)
    check.boolean("multiply_by_parameter_scale", multiply_by_parameter_scale)
    check.optional(check.positive, "clipping_threshold", clipping_threshold)
    check.optional(check.average_decay, "momentum", momentum)  # an EMA: 1 would freeze it at 0
    check.dtype("dtype_momentum", dtype_momentum)
    check.optional(check.non_negative, "weight_decay_rate", weight_decay_rate)
    check.optional(check.mask, "weight_decay_mask", weight_decay_mask)
    txs = [scale_by_factored_rms(factored, decay_rate, decay_offset, min_dim_size_to_factor, eps)]
    if clipping_threshold is not None:
        txs.append(clip_by_block_rms(clipping_threshold))
    if learning_rate is not None:
        txs.append(scale_by_learning_rate(learning_rate, flip_sign=False))
    if multiply_by_parameter_scale:
        txs.append(scale_by_param_block_rms())
    if momentum is not None:
        txs.append(ema(momentum, debias=False, accumulator_dtype=dtype_momentum))
    if weight_decay_rate is not None:
        txs.append(add_decayed_weights(weight_decay_rate, mask=weight_decay_mask))
    txs.append(scale(-1))  # descend: every stage above worked with the gradient's sign
    return chain(*txs)


def sm3(
    learning_rate: ScalarOrSchedule, momentum: float | jax.Array = 0.9
) -> GradientTransformationExtraArgs:
    r"""SM3: :func:`jopt.scale_by_sm3` (per-axis accumulators) then the learning rate.

    .. math::  w_{t+1} = w_t - \eta_t\, u_t

    with :math:`u_t` the momentum of :math:`g_t / \sqrt{\nu_t}` from :func:`jopt.scale_by_sm3`.

    Args:
      learning_rate: :math:`\eta`, a number >= 0 or a schedule (optax takes numbers only;
        a number gives the same transform as optax's).
      momentum: decay of the momentum, in [0, 1) (default 0.9).

    References:
      Anil et al., `Memory-Efficient Adaptive Optimization
      <https://arxiv.org/abs/1901.11150>`_, 2019.
    """
    check.unit_interval("momentum", momentum)
    return chain(scale_by_sm3(momentum), scale_by_learning_rate(learning_rate))
