"""Stochastic gradient descent and its step rules: momentum (heavy-ball, Nesterov), Polyak's
step size, annealed gradient noise."""

from __future__ import annotations

from typing import Any, Literal

import jax

from jopt import _check as check
from jopt.base import GradientTransformationExtraArgs, ScalarOrSchedule, identity
from jopt.transforms._combining import chain
from jopt.transforms._momentum import trace
from jopt.transforms._noise import add_noise
from jopt.transforms._polyak import scale_by_polyak
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


def polyak_sgd(
    max_learning_rate: float | jax.Array = 1.0,
    scaling: ScalarOrSchedule = 1.0,
    f_min: float | jax.Array = 0.0,
    eps: float | jax.Array = 0.0,
    variant: Literal["sps", "sps+"] = "sps",
) -> GradientTransformationExtraArgs:
    r"""SGD with Polyak's step size; ``update`` needs the loss as ``value=``.

    .. math::
        w_{t+1} = w_t - s_t \min\left(\frac{f(w_t) - f^\star}{\|g_t\|^2 + \epsilon},
        \gamma_{max}\right) g_t

    (gap clipped at 0 for ``'sps+'``; see :func:`jopt.scale_by_polyak`).

    Args:
      max_learning_rate: :math:`\gamma_{max}`, the largest step size, >= 0 (default 1.0).
      scaling: :math:`s_t`, a number >= 0 or a schedule (default 1.0).
      f_min: :math:`f^\star`, a lower bound of the loss (default 0.0).
      eps: added to the denominator, >= 0 (default 0.0).
      variant: ``'sps'`` or ``'sps+'`` (default ``'sps'``).

    References:
      Loizou et al., `Stochastic Polyak Step-size for SGD: An Adaptive Learning Rate for
      Fast Convergence <https://arxiv.org/abs/2002.10542>`_, 2021.

    Example:
      >>> import jax.numpy as jnp, jopt
      >>> tx = jopt.polyak_sgd()
      >>> params = jnp.array([1.0, 2.0])
      >>> updates, _ = tx.update(2 * params, tx.init(params), params, value=5.0)
      >>> print(updates)
      [-0.5 -1. ]
    """
    check.learning_rate("scaling", scaling)
    return chain(
        sgd(learning_rate=scaling),
        scale_by_polyak(max_learning_rate=max_learning_rate, f_min=f_min, eps=eps, variant=variant),
    )


def noisy_sgd(
    learning_rate: ScalarOrSchedule,
    eta: float | jax.Array = 0.01,
    gamma: float | jax.Array = 0.55,
    key: jax.Array | int | None = None,
    *,
    seed: int | None = None,
) -> GradientTransformationExtraArgs:
    r"""SGD with annealed Gaussian gradient noise (:func:`jopt.add_noise`).

    .. math::  w_{t+1} = w_t - \eta_t \left(g_t + \sqrt{\eta / t^{\gamma}}\, z_t\right),
               \qquad z_t \sim \mathcal{N}(0, I)

    The same ``key`` gives the same noise as optax's ``noisy_sgd``.

    Args:
      learning_rate: :math:`\eta_t`, a number >= 0 or a schedule.
      eta: base variance of the noise, >= 0 (default 0.01).
      gamma: annealing exponent, >= 0 (default 0.55).
      key: an int seed or a ``jax.random.key`` (None means seed 0).
      seed: deprecated spelling of ``key``.

    References:
      Neelakantan et al., `Adding Gradient Noise Improves Learning for Very Deep Networks
      <https://arxiv.org/abs/1511.06807>`_, 2015.
    """
    return chain(add_noise(eta, gamma, key, seed=seed), scale_by_learning_rate(learning_rate))
