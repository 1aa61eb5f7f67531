r"""DoG: a learning-rate-free step size, the distance travelled over the gradients' size."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree
from jopt._flat._capability import refuse_flat
from jopt.base import GradientTransformation


class ScaleByDistanceOverGradientsState(NamedTuple):
    """State of :func:`scale_by_distance_over_gradients`."""

    max_dist: Any  # per leaf, a scalar: largest distance from the initial params so far
    grad_sum_of_squares: Any  # per leaf, a (1,) float32: running sum of squared gradients
    init_params: Any  # the initial params, like params (param_dtype)


def _distance(x: jax.Array, y: Any = 0.0) -> jax.Array:
    return jnp.sqrt(jnp.square(x - y).sum())


def scale_by_distance_over_gradients(
    reps_rel: float | jax.Array = 1e-6,
    eps: float | jax.Array = 1e-8,
    param_dtype: Any = jnp.float32,
    global_scale: float | jax.Array = 1.0,
) -> GradientTransformation:
    r"""Layer-wise DoG: scale each leaf by its distance travelled over its gradient sizes.

    For each leaf, with :math:`r_0 = \text{reps\_rel}\,(1 + \|x_0\|)`:

    .. math::
        r_t = \max(r_{t-1}, \|x_t - x_0\|), \qquad G_t = G_{t-1} + \|g_t\|^2, \qquad
        u_t = s\,\frac{r_t}{\sqrt{G_t + \epsilon}}\, g_t

    The sign is not flipped: pass ``global_scale=-1.0`` to descend. Needs ``params``.

    Args:
      reps_rel: relative size of the first step, > 0 (default 1e-6; 1e-4 with batch norm).
      eps: :math:`\epsilon`, added under the square root, >= 0 (default 1e-8).
      param_dtype: dtype of the stored initial params (default float32).
      global_scale: :math:`s`, a number, typically 1.0 or -1.0 (default 1.0).

    References:
      Ivgi et al., `DoG is SGD's Best Friend: A Parameter-Free Dynamic Step Size Schedule
      <https://arxiv.org/abs/2302.12022>`_, 2023.
    """
    check.positive("reps_rel", reps_rel, "pass a small value such as 1e-6")
    check.non_negative("eps", eps)
    param_dtype = check.dtype("param_dtype", param_dtype)
    check.number("global_scale", global_scale)

    def init(params):
        refuse_flat("scale_by_distance_over_gradients", params)
        return ScaleByDistanceOverGradientsState(
            max_dist=jax.tree.map(lambda x: reps_rel * (1 + _distance(x)), params),
            grad_sum_of_squares=jax.tree.map(lambda _: jnp.zeros(1), params),
            init_params=tree.cast(params, param_dtype),
        )

    def update(updates, state, params=None):
        check.params_given("scale_by_distance_over_gradients", params)
        # Cast back so that low-precision params do not change the state's dtype (a retrace).
        max_dist = jax.tree.map(
            lambda d, x, x0: jnp.maximum(d, _distance(x, x0)).astype(d.dtype),
            state.max_dist,
            params,
            state.init_params,
        )
        g_sos = jax.tree.map(
            lambda s, g: s + jnp.square(g).sum(), state.grad_sum_of_squares, updates
        )
        # The sum is stored with shape (1,) (optax's layout); the step size is taken as a
        # scalar so that a scalar leaf keeps its shape.
        updates = jax.tree.map(
            lambda g, d, s: (global_scale * (d / jnp.sqrt(s[0] + eps)) * g).astype(g.dtype),
            updates,
            max_dist,
            g_sos,
        )
        return updates, ScaleByDistanceOverGradientsState(max_dist, g_sos, state.init_params)

    return GradientTransformation(init, update)
