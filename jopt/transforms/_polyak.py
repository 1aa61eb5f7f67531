r"""Polyak's step size: the loss gap over the squared gradient norm."""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree
from jopt.base import GradientTransformationExtraArgs, init_empty_state


def scale_by_polyak(
    f_min: float | jax.Array = 0.0,
    max_learning_rate: float | jax.Array = 1.0,
    eps: float | jax.Array = 0.0,
    variant: Literal["sps", "sps+"] = "sps",
) -> GradientTransformationExtraArgs:
    r"""Scale updates by the (stochastic) Polyak step size.

    .. math::
        u_t = \min\left(\frac{f(x_t) - f^\star}{\|g_t\|^2 + \epsilon},\ \gamma_{max}\right) g_t

    with the gap :math:`f(x_t) - f^\star` clipped at 0 for ``'sps+'``, and :math:`u_t = 0`
    where :math:`\|g_t\|^2 + \epsilon` is at most float64's machine epsilon. ``update``
    needs the loss as the keyword argument ``value``.

    Args:
      f_min: :math:`f^\star`, a lower bound of the loss, a number (default 0.0).
      max_learning_rate: :math:`\gamma_{max}`, the largest step size, >= 0 (default 1.0).
      eps: :math:`\epsilon`, added to the denominator, >= 0 (default 0.0).
      variant: ``'sps'`` or ``'sps+'`` (default ``'sps'``).

    References:
      Loizou et al., `Stochastic Polyak Step-size for SGD: An Adaptive Learning Rate for
      Fast Convergence <https://arxiv.org/abs/2002.10542>`_, 2021;
      Berrada et al., `Training Neural Networks for and by Interpolation
      <https://arxiv.org/abs/1906.05661>`_, 2020.
    """
    check.number("f_min", f_min)
    check.non_negative("max_learning_rate", max_learning_rate)
    check.non_negative("eps", eps)
    check.one_of("variant", variant, ("sps", "sps+"))

    def update(updates, state, params=None, *, value=None, **extra_args):
        del params, extra_args
        if value is None:  # a TypeError, as optax's update takes value as a required argument
            raise TypeError(
                "value must be passed to scale_by_polyak's update, got None; "
                "call tx.update(grads, state, params, value=loss)"
            )
        grad_sq_norm = tree.norm(updates, squared=True)
        gap = jnp.array(value - f_min).astype(grad_sq_norm.dtype)
        if variant == "sps+":
            gap = jax.nn.relu(gap)
        step = jnp.where(
            grad_sq_norm + eps <= jnp.finfo(float).eps,
            jnp.array(0.0),
            jnp.minimum(gap / (grad_sq_norm + eps), max_learning_rate),
        )
        return jax.tree.map(lambda g: (step * g).astype(g.dtype), updates), state

    return GradientTransformationExtraArgs(init_empty_state, update)
