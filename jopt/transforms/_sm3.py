r"""SM3: memory-efficient adaptive scaling with one accumulator per axis of each leaf."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree
from jopt._flat._capability import refuse_flat
from jopt.base import GradientTransformation, Updates


class ScaleBySM3State(NamedTuple):
    """State of :func:`scale_by_sm3`."""

    mu: Updates  # per leaf, a list of one accumulator per axis (shape (d_i,)); [()] for scalars
    nu: Updates  # EMA of the scaled updates, like params


def _axis_accumulator(x: jax.Array, axis: int) -> jax.Array:
    # Shaped (and, under sharding-in-types, sharded) like a reduction over the other axes.
    others = tuple(i for i in range(x.ndim) if i != axis)
    return jnp.zeros_like(jax.eval_shape(functools.partial(jnp.sum, axis=others), x))


def _accumulators(x: jax.Array) -> list[jax.Array]:
    # A scalar keeps one scalar accumulator, as a vector of length 1 would.
    if x.ndim == 0:
        return [jnp.zeros_like(x)]
    return [_axis_accumulator(x, i) for i in range(x.ndim)]


def _broadcastable(shape: tuple[int, ...], axis: int) -> list[int]:
    return [1] * axis + [shape[axis]] + [1] * (len(shape) - axis - 1)


def scale_by_sm3(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 1.0,
    eps: float | jax.Array = 1e-8,
) -> GradientTransformation:
    r"""Rescale updates by SM3 (Square-root of Minima of Sums of Maxima of squared gradients).

    For a leaf with axes :math:`r = 1..k` and per-axis accumulators :math:`\mu^{(r)}`:

    .. math::
        \nu'_t = c\,g_t^2 + \beta_2 \min_r \mu^{(r)}_{t-1}, \qquad
        \mu^{(r)}_t = \max_{\text{axes} \ne r} \nu'_t, \qquad
        u_t = \beta_1 u_{t-1} + (1-\beta_1)\,\frac{g_t}{\sqrt{\nu'_t + \epsilon}}

    with :math:`c = 1` if :math:`\beta_2 = 1` else :math:`1-\beta_2`, and
    :math:`1/\sqrt{\cdot}` taken as 0 where :math:`\nu'_t = 0`. Vectors and scalars keep a
    full accumulator. Real params only.

    Args:
      b1: :math:`\beta_1`, momentum of the scaled updates, in [0, 1) (default 0.9).
      b2: :math:`\beta_2`, decay of the accumulators, in [0, 1] (default 1.0: a plain sum).
      eps: :math:`\epsilon`, added inside the square root, >= 0 (default 1e-8).

    References:
      Anil et al., `Memory-Efficient Adaptive Optimization
      <https://arxiv.org/abs/1901.11150>`_, 2019.
    """
    check.unit_interval("b1", b1)
    check.closed_unit_interval("b2", b2, "pass a value in [0, 1] such as 1.0")
    check.non_negative("eps", eps)
    # A traced b2 (inject_hyperparams) cannot be compared in Python, hence jnp.where.
    new_weight = jnp.where(b2 == 1.0, 1.0, 1.0 - b2)

    def init(params):
        refuse_flat("scale_by_sm3", params)
        if any(jnp.iscomplexobj(x) for x in jax.tree.leaves(params)):
            raise ValueError(
                "params must be real for scale_by_sm3, got complex leaves; "
                "split complex params into real and imaginary parts"
            )
        return ScaleBySM3State(mu=jax.tree.map(_accumulators, params), nu=tree.zeros_like(params))

    def accumulate(g, mu):
        if g.ndim < 2:
            return new_weight * g**2 + b2 * mu[0]
        expanded = [jnp.reshape(m, _broadcastable(g.shape, i)) for i, m in enumerate(mu)]
        return new_weight * g**2 + b2 * functools.reduce(jnp.minimum, expanded)

    def per_axis_max(accum):
        if accum.ndim < 2:
            return [accum]
        return [
            jnp.max(accum, axis=tuple(j for j in range(accum.ndim) if j != i))
            for i in range(accum.ndim)
        ]

    def update(updates, state, params=None):
        del params
        accum = jax.tree.map(accumulate, updates, state.mu)
        scaled = jax.tree.map(
            lambda g, a: g * jnp.where(a > 0, jax.lax.rsqrt(a + eps), 0.0), updates, accum
        )
        nu = tree.update_moment(scaled, state.nu, b1, 1)
        mu = jax.tree.map(per_axis_max, accum)
        return nu, ScaleBySM3State(mu=mu, nu=nu)

    return GradientTransformation(init, update)
