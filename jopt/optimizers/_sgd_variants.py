r"""SGD variants that change the step: Polyak's step size, annealed gradient noise, Rprop."""

from __future__ import annotations

from typing import Literal

import jax

from jopt import _check as check
from jopt.base import GradientTransformationExtraArgs, ScalarOrSchedule
from jopt.optimizers._sgd import sgd
from jopt.transforms._combining import chain
from jopt.transforms._noise import add_noise
from jopt.transforms._polyak import scale_by_polyak
from jopt.transforms._rprop import scale_by_rprop
from jopt.transforms._scaling import scale, scale_by_learning_rate


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
