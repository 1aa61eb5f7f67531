"""Quasi-Newton optimizers: L-BFGS with a line search."""

from __future__ import annotations

from jopt import _check as check
from jopt.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    ScalarOrSchedule,
    identity,
)
from jopt.transforms._combining import chain
from jopt.transforms._lbfgs import scale_by_lbfgs
from jopt.transforms._scaling import scale, scale_by_learning_rate
from jopt.transforms._zoom import scale_by_zoom_linesearch

# optax's default: a zoom search that starts every step from 1, the natural
# step of a Newton-like direction. One shared instance: it holds no state.
_ZOOM_FROM_ONE = scale_by_zoom_linesearch(max_linesearch_steps=20, initial_guess_strategy="one")


def lbfgs(
    learning_rate: ScalarOrSchedule | None = None,
    memory_size: int = 10,
    scale_init_precond: bool = True,
    linesearch: GradientTransformation | None = _ZOOM_FROM_ONE,
) -> GradientTransformationExtraArgs:
    r"""L-BFGS: a limited-memory quasi-Newton direction, with a step set by a line search.

    .. math::
      w_{k+1} = w_k - \eta_k P_k \nabla f(w_k),

    where :math:`P_k` is the L-BFGS inverse-Hessian estimate of
    :func:`jopt.scale_by_lbfgs` and :math:`\eta_k` comes from the line search (by
    default :func:`jopt.scale_by_zoom_linesearch`, starting from 1) times
    ``learning_rate`` if one is given. ``update`` takes ``value``, ``grad`` and
    ``value_fn``; on a deterministic objective :func:`jopt.value_and_grad_from_state`
    reuses the line search's last evaluation.

    Args:
      learning_rate: extra factor on the step, a number >= 0 or a schedule; default
        None (the line search alone sets the step).
      memory_size: number of past steps kept, integer >= 1; default 10.
      scale_init_precond: scale the initial inverse Hessian by
        :math:`\langle\delta w, \delta u\rangle / \|\delta u\|^2`; default True.
      linesearch: a transform choosing the step (e.g. :func:`jopt.scale_by_zoom_linesearch`
        or :func:`jopt.scale_by_backtracking_linesearch`), or None for a fixed step.

    References:
      Nocedal & Wright, Numerical Optimization, 1999, Algorithms 7.4 and 7.5.
      Liu & Nocedal, `On the limited memory BFGS method for large scale optimization
      <https://doi.org/10.1007/BF01589116>`_, 1989.

    Example:
      >>> import jax, jax.numpy as jnp, jopt
      >>> fn = lambda x: jnp.sum((x - 1.0) ** 2)
      >>> solver, params = jopt.lbfgs(), jnp.zeros(3)
      >>> state = solver.init(params)
      >>> value_and_grad = jopt.value_and_grad_from_state(fn)
      >>> for _ in range(3):
      ...     value, grad = value_and_grad(params, state=state)
      ...     updates, state = solver.update(
      ...         grad, state, params, value=value, grad=grad, value_fn=fn)
      ...     params = jopt.apply_updates(params, updates)
      >>> print(jnp.round(params, 4))
      [1. 1. 1.]
    """
    check.optional(check.learning_rate, "learning_rate", learning_rate)
    check.optional(check.transformation, "linesearch", linesearch)
    step = scale(-1.0) if learning_rate is None else scale_by_learning_rate(learning_rate)
    return chain(
        scale_by_lbfgs(memory_size=memory_size, scale_init_precond=scale_init_precond),
        step,
        identity() if linesearch is None else linesearch,
    )
