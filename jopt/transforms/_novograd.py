r"""NovoGrad: SGD with momentum, normalized per layer by an EMA of the gradient's norm."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree
from jopt._flat._leaf_rows import map_leaf_rows, per_leaf_zeros, row_norm
from jopt._flat._tree import FlatTree
from jopt.base import GradientTransformation, Updates
from jopt.schedules._hyper import zero_count


class ScaleByNovogradState(NamedTuple):
    """State of :func:`scale_by_novograd`."""

    count: jax.Array  # int32 scalar, number of updates seen (saturates)
    mu: Updates  # momentum of normalized gradients, like params (mu_dtype)
    nu: Updates  # EMA of each leaf's squared gradient norm: one scalar per leaf, param dtype


def scale_by_novograd(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.25,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    weight_decay: float | jax.Array = 0.0,
    mu_dtype: Any = None,
) -> GradientTransformation:
    r"""Rescale updates by the NovoGrad algorithm (layer-wise second moments).

    For each leaf (layer) :math:`l`, with :math:`v^l_1 = \|g^l_1\|^2` and :math:`m^l_0 = 0`:

    .. math::
        v^l_t = \beta_2 v^l_{t-1} + (1-\beta_2)\|g^l_t\|_2^2, \qquad
        m^l_t = \beta_1 m^l_{t-1} + \frac{g^l_t}{\sqrt{v^l_t + \epsilon_{root}} + \epsilon}
                + \lambda\, p^l_t, \qquad u_t = m_t

    Needs ``params`` in ``update``.

    Args:
      b1: :math:`\beta_1`, momentum, in [0, 1) (default 0.9).
      b2: :math:`\beta_2`, decay of the squared-norm EMA, in [0, 1) (default 0.25).
      eps: :math:`\epsilon`, added to the denominator, >= 0 (default 1e-8).
      eps_root: :math:`\epsilon_{root}`, added inside the square root, >= 0 (default 0.0).
      weight_decay: :math:`\lambda`, a number >= 0 (default 0.0).
      mu_dtype: dtype of the momentum; None keeps the params' dtype.

    References:
      Ginsburg et al., `Stochastic Gradient Methods with Layer-wise Adaptive Moments for
      Training of Deep Networks <https://arxiv.org/abs/1905.11286>`_, 2019.
    """
    check.unit_interval("b1", b1)
    check.unit_interval("b2", b2, "pass a value in [0, 1) such as 0.25")
    check.non_negative("eps", eps)
    check.non_negative("eps_root", eps_root)
    check.not_schedule(
        "weight_decay", weight_decay, "novograd adds it inside the momentum at every step"
    )
    check.non_negative("weight_decay", weight_decay)
    mu_dtype = check.dtype("mu_dtype", mu_dtype)

    def init(params):
        if isinstance(params, FlatTree):  # one nu per leaf, by blocks of equal-size leaves
            nu = per_leaf_zeros(params)
        else:
            nu = jax.tree.map(lambda p: jnp.asarray(0.0, dtype=p.dtype), params)
        return ScaleByNovogradState(
            count=zero_count(), mu=tree.zeros_like(params, dtype=mu_dtype), nu=nu
        )

    def normalized(g, p, nu):
        return g / (jnp.sqrt(nu + eps_root) + eps) + weight_decay * p

    def leafwise(f, *args, per_leaf=False):
        if isinstance(args[0], FlatTree):
            return map_leaf_rows(lambda *xs: f(*xs, row_norm), *args, per_leaf=per_leaf)
        return jax.tree.map(lambda *xs: f(*xs, jnp.linalg.norm), *args)

    def first_nu(grads, nu):
        if isinstance(grads, FlatTree):
            return map_leaf_rows(
                lambda g, n: (row_norm(g) ** 2).astype(n.dtype), grads, nu, per_leaf=True
            )
        return jax.tree.map(lambda g, n: (jnp.linalg.norm(g) ** 2).astype(n.dtype), grads, nu)

    def next_nu(grads, nu):
        squared = leafwise(lambda g, norm: norm(g) ** 2, grads, per_leaf=True)
        return tree.update_moment(squared, nu, b2, 1)

    def first_mu(grads, params, mu, nu):
        del mu
        return leafwise(lambda g, p, n, _: normalized(g, p, n), grads, params, nu)

    def next_mu(grads, params, mu, nu):
        return leafwise(lambda m, g, p, n, _: b1 * m + normalized(g, p, n), mu, grads, params, nu)

    def update(updates, state, params=None):
        check.params_given("scale_by_novograd", params)
        count = tree.safe_increment(state.count)
        # The first step seeds the moments with the raw statistics instead of decaying zeros.
        nu = jax.lax.cond(count == 1, first_nu, next_nu, updates, state.nu)
        mu = jax.lax.cond(count == 1, first_mu, next_mu, updates, params, state.mu, nu)
        mu = tree.cast(mu, mu_dtype)
        return mu, ScaleByNovogradState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init, update)
