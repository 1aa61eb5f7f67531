"""L-BFGS preconditioning: multiply the updates by a limited-memory inverse-Hessian estimate."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree as jtree
from jopt.base import ArrayTree, GradientTransformation, Params, Updates
from jopt.schedules._hyper import zero_count


class ScaleByLBFGSState(NamedTuple):
    """State of :func:`scale_by_lbfgs`.

    The memories are ring buffers: entry ``i`` of every leaf (its leading axis of
    size ``memory_size``) belongs to the same past step.
    """

    count: jax.Array  # int32 scalar, number of updates seen (saturates)
    params: Params  # like params: the params of the previous step
    updates: Updates  # like params: the (input) updates of the previous step
    diff_params_memory: ArrayTree  # like params with a leading memory_size axis: w_{k+1} - w_k
    diff_updates_memory: ArrayTree  # like params with a leading memory_size axis: u_{k+1} - u_k
    weights_memory: jax.Array  # float32 (memory_size,): rho_k = 1 / <du_k, dw_k>


def _real_vdot(x, y):
    return jnp.real(jtree.vdot(x, y))


def _precondition(updates, dw_memory, du_memory, rhos, identity_scale, oldest):
    """Two-loop recursion (Nocedal & Wright, Algorithm 7.4) over the ring buffer,
    newest entry first in the first loop; ``oldest`` is the slot written next."""
    memory_size = rhos.shape[0]
    order = (oldest + jnp.arange(memory_size)) % memory_size

    def entry(idx):
        return jax.tree.map(lambda m: m[idx], (dw_memory, du_memory))

    def backward(vec, idx):
        dw, du = entry(idx)
        alpha = rhos[idx] * _real_vdot(dw, vec)
        return jtree.cast_like(jtree.add_scale(vec, -alpha, du), vec), alpha

    vec, alphas = jax.lax.scan(backward, updates, order, reverse=True)
    vec = jtree.scale(identity_scale, vec)

    def forward(vec, idx_alpha):
        idx, alpha = idx_alpha
        dw, du = entry(idx)
        beta = rhos[idx] * _real_vdot(du, vec)
        return jtree.cast_like(jtree.add_scale(vec, alpha - beta, dw), vec), beta

    vec, _ = jax.lax.scan(forward, vec, (order, alphas))
    return vec


def scale_by_lbfgs(
    memory_size: int = 10, scale_init_precond: bool = True
) -> GradientTransformation:
    r"""Multiply the updates by the L-BFGS estimate of the inverse Hessian, :math:`P_k u_k`.

    With :math:`\delta w_j = w_{j+1} - w_j`, :math:`\delta u_j = u_{j+1} - u_j` and
    :math:`\rho_j = 1 / \langle \delta u_j, \delta w_j\rangle` over the last
    :math:`m` steps,

    .. math::
      P_{k,j+1} = V_j^\top P_{k,j} V_j + \rho_j\,\delta w_j \delta w_j^\top,\quad
      V_j = I - \rho_j\,\delta u_j \delta w_j^\top,\quad
      P_{k,k-m} = \gamma_k I,\quad
      \gamma_k = \frac{\langle \delta w_{k-1}, \delta u_{k-1}\rangle}
                      {\langle \delta u_{k-1}, \delta u_{k-1}\rangle},

    computed by the two-loop recursion. At the first step
    :math:`\gamma_0 = \min(1, 1/\|u_0\|)`, so the first step stays within the unit
    ball. The memory is updated before preconditioning, so chained with a line
    search it sees each accepted step. The sign is kept: chain with
    ``scale(-1.0)`` (as :func:`jopt.lbfgs` does) to descend.

    Args:
      memory_size: :math:`m`, number of past steps kept, integer >= 1; default 10.
      scale_init_precond: use :math:`\gamma_k` above (True) or :math:`\gamma_k = 1`; default True.

    References:
      Nocedal & Wright, Numerical Optimization, 1999, Algorithms 7.4 and 7.5.
      Liu & Nocedal, `On the limited memory BFGS method for large scale optimization
      <https://doi.org/10.1007/BF01589116>`_, 1989.
    """
    check.integer("memory_size", memory_size, 1, "pass an integer >= 1 such as 10")
    check.boolean("scale_init_precond", scale_init_precond)

    def init(params):
        stacked = jax.tree.map(lambda p: jnp.zeros((memory_size, *p.shape), p.dtype), params)
        return ScaleByLBFGSState(
            count=zero_count(),
            params=jtree.zeros_like(params),
            updates=jtree.zeros_like(params),
            diff_params_memory=stacked,
            diff_updates_memory=stacked,
            weights_memory=jnp.zeros(memory_size),
        )

    def update(updates, state, params=None):
        check.params_given("scale_by_lbfgs", params)
        started = state.count > 0
        slot = state.count % memory_size
        previous_slot = (state.count - 1) % memory_size

        # 1. Record the last step; at the first one there is no step yet: zeros.
        dw = jtree.sub(params, state.params)
        du = jtree.sub(updates, state.updates)
        curvature = _real_vdot(du, dw)
        rho = jnp.where(curvature == 0.0, 0.0, 1.0 / curvature)
        dw, du, rho = jax.tree.map(
            lambda x: jnp.where(started, x, jnp.zeros_like(x)), (dw, du, rho)
        )
        dw_memory, du_memory, rhos = jax.tree.map(
            lambda memory, x: memory.at[previous_slot].set(x),
            (state.diff_params_memory, state.diff_updates_memory, state.weights_memory),
            (dw, du, rho),
        )

        # 2. Scale of the initial inverse Hessian.
        if scale_init_precond:
            du_sq = jtree.l2_norm(du, squared=True)
            gamma = jnp.where(du_sq > 0.0, _real_vdot(du, dw) / du_sq, 1.0)
            first = jnp.minimum(1.0, 1.0 / jtree.l2_norm(jax.lax.stop_gradient(updates)))
            identity_scale = jnp.where(started, gamma, first)
        else:
            identity_scale = 1.0

        # 3. P_k u_k.
        preconditioned = _precondition(updates, dw_memory, du_memory, rhos, identity_scale, slot)
        return preconditioned, ScaleByLBFGSState(
            count=jtree.safe_increment(state.count),
            params=params,
            updates=updates,
            diff_params_memory=dw_memory,
            diff_updates_memory=du_memory,
            weights_memory=rhos,
        )

    return GradientTransformation(init, update)
