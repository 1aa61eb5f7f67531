"""DoG and DoWG: step sizes from the distance travelled over the accumulated gradient norms."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree as jtree
from jopt.base import (
    ArrayTree,
    GradientTransformation,
    GradientTransformationExtraArgs,
    ScalarOrSchedule,
    identity,
)
from jopt.transforms import add_decayed_weights, chain, scale_by_learning_rate

_INIT_STEP_TYPES = ("distance", "learning_rate", "heuristic")


class DoGState(NamedTuple):
    """State of :func:`scale_by_dog`."""

    is_init_step: jax.Array  # bool scalar, True until the first update
    init_params: ArrayTree  # the initial parameters x_0
    max_dist: jax.Array  # scalar, lowest params dtype: max_t ||x_t - x_0|| (starts at r_eps)
    sum_sq_norm_grads: jax.Array  # scalar, lowest params dtype: sum_t ||g_t||^2


def _check_init_step(init_step: Any) -> tuple[str, Any]:
    if not isinstance(init_step, (tuple, list)) or len(init_step) != 2:
        raise TypeError(
            f"init_step must be a pair (kind, value), got {init_step!r}; "
            "e.g. ('heuristic', 1e-6), ('distance', 1e-3) or ('learning_rate', 1e-3)"
        )
    kind, value = init_step
    check.one_of("init_step[0]", kind, _INIT_STEP_TYPES)
    check.positive("init_step[1]", value, "pass a small positive value such as 1e-6")
    return kind, value


def scale_by_dog(
    init_step: tuple[Literal["distance", "learning_rate", "heuristic"], float],
    eps: float = 1e-8,
) -> GradientTransformation:
    r"""Scale updates by DoG's step size: the largest distance from the start over the gradients.

    .. math::

        r_t = \max\big(r_{t-1}, \|x_t - x_0\|\big), \quad
        G_t = G_{t-1} + \|g_t\|^2, \quad \eta_t = r_t / \sqrt{G_t + \epsilon}, \quad
        u_t = \eta_t\, g_t

    ``init_step`` sets the first step: ``("distance", r)`` starts with :math:`r_0 = r`;
    ``("heuristic", c)`` with :math:`r_0 = c\,(1 + \|x_0\|)`; ``("learning_rate", \eta)``
    uses :math:`\eta_0 = \eta` and :math:`r_0 = 0`. Needs ``params``.

    Args:
      init_step: ``(kind, value)`` with kind one of ``"distance"``, ``"learning_rate"``,
        ``"heuristic"`` and value > 0.
      eps: added to the sum of squared norms, >= 0. Default 1e-8.

    References:
      Ivgi, Hinder & Carmon, `DoG is SGD's Best Friend: A Parameter-Free Dynamic Step Size
      Schedule <https://arxiv.org/abs/2302.12022>`_, ICML 2023.
    """
    kind, value = _check_init_step(init_step)
    check.non_negative("eps", eps)

    def init(params):
        low = jtree.dtype(params, "lowest")
        if kind == "distance":
            r_eps = value
        elif kind == "heuristic":
            r_eps = value * (1 + jtree.norm(params))
        else:
            r_eps = 0.0
        return DoGState(
            is_init_step=jnp.asarray(True),
            init_params=params,
            max_dist=jnp.asarray(r_eps, low),
            sum_sq_norm_grads=jnp.asarray(0.0, low),
        )

    def update(updates, state, params=None):
        check.params_given("scale_by_dog", params)
        max_dist = jnp.maximum(state.max_dist, jtree.norm(jtree.sub(state.init_params, params)))
        sum_sq = state.sum_sq_norm_grads + jtree.norm(updates, squared=True)
        step = max_dist / jnp.sqrt(sum_sq + eps)
        if kind == "learning_rate":
            step = jnp.where(state.is_init_step, value, step)
        new_state = DoGState(jnp.asarray(False), state.init_params, max_dist, sum_sq)
        return jtree.scale(step, updates), new_state

    return GradientTransformation(init, update)


def dog(
    learning_rate: ScalarOrSchedule = 1.0,
    init_step: tuple[Literal["distance", "learning_rate", "heuristic"], float] = (
        "heuristic",
        1e-6,
    ),
    eps: float = 1e-8,
    weight_decay: float | None = None,
    mask: Any | Callable[[Any], Any] | None = None,
) -> GradientTransformationExtraArgs:
    r"""Distance over Gradients (DoG): parameter-free SGD (see :func:`scale_by_dog`).

    .. math::  x_{t+1} = x_t - \alpha_t\,\eta_t\,(g_t + \lambda x_t)

    Args:
      learning_rate: :math:`\alpha_t`, multiplies DoG's step, >= 0 or a schedule. Default 1.
      init_step: ``(kind, value)``, see :func:`scale_by_dog`. Default ``("heuristic", 1e-6)``.
      eps: added to the sum of squared norms, >= 0. Default 1e-8.
      weight_decay: :math:`\lambda`, added to the gradient, >= 0; None adds nothing.
      mask: tree of booleans (or a function of the params) selecting the leaves to decay.

    References:
      Ivgi, Hinder & Carmon, `DoG is SGD's Best Friend: A Parameter-Free Dynamic Step Size
      Schedule <https://arxiv.org/abs/2302.12022>`_, ICML 2023.
    """
    check.learning_rate("learning_rate", learning_rate)
    check.optional(check.non_negative, "weight_decay", weight_decay)
    return chain(
        identity() if weight_decay is None else add_decayed_weights(weight_decay, mask),
        scale_by_dog(init_step, eps),
        scale_by_learning_rate(learning_rate),
    )


class DoWGState(NamedTuple):
    """State of :func:`scale_by_dowg`."""

    init_params: ArrayTree  # the initial parameters x_0
    weighted_sq_norm_grads: jax.Array  # scalar, lowest params dtype: sum_t r_t^2 ||g_t||^2
    estim_sq_dist: jax.Array  # scalar, lowest params dtype: r_t^2 = max_t ||x_t - x_0||^2


def scale_by_dowg(
    init_estim_sq_dist: float | None = None,
    eps: float = 1e-4,
) -> GradientTransformation:
    r"""Scale updates by DoWG's step size: distance-weighted gradient norms.

    .. math::

        r_t^2 = \max\big(r_{t-1}^2, \|x_t - x_0\|^2\big), \quad
        v_t = v_{t-1} + r_t^2 \|g_t\|^2, \quad u_t = \frac{r_t^2}{\sqrt{v_t} + \epsilon}\, g_t

    Needs ``params``.

    Args:
      init_estim_sq_dist: :math:`r_0^2`, > 0; None uses ``eps``.
      eps: added to the denominator, >= 0; also the default :math:`r_0^2` (then > 0).
        Default 1e-4.

    References:
      Khaled, Mishchenko & Jin, `DoWG Unleashed: An Efficient Universal Parameter-Free
      Gradient Descent Method <https://arxiv.org/abs/2305.16284>`_, NeurIPS 2023.
    """
    check.optional(check.positive, "init_estim_sq_dist", init_estim_sq_dist)
    check.non_negative("eps", eps)
    if init_estim_sq_dist is None:
        # eps doubles as r_0^2 then, and r_0 = 0 would never move.
        check.positive("eps", eps, "pass eps > 0 such as 1e-4, or init_estim_sq_dist > 0")
    r0_sq = eps if init_estim_sq_dist is None else init_estim_sq_dist

    def init(params):
        low = jtree.dtype(params, "lowest")
        return DoWGState(
            init_params=params,
            weighted_sq_norm_grads=jnp.asarray(0.0, low),
            estim_sq_dist=jnp.asarray(r0_sq, low),
        )

    def update(updates, state, params=None):
        check.params_given("scale_by_dowg", params)
        dist_sq = jtree.norm(jtree.sub(state.init_params, params), squared=True)
        estim_sq_dist = jnp.maximum(state.estim_sq_dist, dist_sq)
        weighted = estim_sq_dist * jtree.norm(updates, squared=True) + state.weighted_sq_norm_grads
        step = estim_sq_dist / (jnp.sqrt(weighted) + eps)
        new_state = DoWGState(state.init_params, weighted, estim_sq_dist)
        return jtree.scale(step, updates), new_state

    return GradientTransformation(init, update)


def dowg(
    learning_rate: ScalarOrSchedule = 1.0,
    init_estim_sq_dist: float | None = None,
    eps: float = 1e-4,
    weight_decay: float | None = None,
    mask: Any | Callable[[Any], Any] | None = None,
) -> GradientTransformationExtraArgs:
    r"""Distance over Weighted Gradients (DoWG): parameter-free SGD (see :func:`scale_by_dowg`).

    .. math::  x_{t+1} = x_t - \alpha_t\,\frac{r_t^2}{\sqrt{v_t}+\epsilon}\,(g_t + \lambda x_t)

    Args:
      learning_rate: :math:`\alpha_t`, multiplies DoWG's step, >= 0 or a schedule. Default 1.
      init_estim_sq_dist: initial squared distance estimate, > 0; None uses ``eps``.
      eps: added to the denominator, >= 0 (> 0 without init_estim_sq_dist). Default 1e-4.
      weight_decay: :math:`\lambda`, added to the gradient, >= 0; None adds nothing.
      mask: tree of booleans (or a function of the params) selecting the leaves to decay.

    References:
      Khaled, Mishchenko & Jin, `DoWG Unleashed: An Efficient Universal Parameter-Free
      Gradient Descent Method <https://arxiv.org/abs/2305.16284>`_, NeurIPS 2023.
    """
    check.learning_rate("learning_rate", learning_rate)
    check.optional(check.non_negative, "weight_decay", weight_decay)
    return chain(
        identity() if weight_decay is None else add_decayed_weights(weight_decay, mask),
        scale_by_dowg(init_estim_sq_dist, eps),
        scale_by_learning_rate(learning_rate),
    )
