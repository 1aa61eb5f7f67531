"""Sophia: clipped, diagonally preconditioned momentum with a stochastic Hessian estimate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree as jtree
from jopt.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    OptState,
    ScalarOrSchedule,
    Updates,
    with_extra_args_support,
)
from jopt.schedules._hyper import zero_count
from jopt.transforms import add_decayed_weights, chain, scale_by_learning_rate


class HutchinsonState(NamedTuple):
    """State of :func:`hutchinson_estimator_diag_hessian`."""

    key: jax.Array  # PRNG key for the next probe vector


def hutchinson_estimator_diag_hessian(
    random_seed: jax.Array | None = None,
) -> GradientTransformationExtraArgs:
    r"""Estimate the Hessian's diagonal with one Rademacher probe per step (Hutchinson).

    .. math::  \widehat{\operatorname{diag} H} = z \odot (H z), \qquad z_i \in \{-1, +1\}

    ``update`` ignores the gradient; it needs ``params`` and ``obj_fn``, the loss as a
    function of the params (an extra argument).

    Args:
      random_seed: a PRNG key; None uses ``jax.random.PRNGKey(0)``.

    References:
      Hutchinson, `A stochastic estimator of the trace of the influence matrix for
      Laplacian smoothing splines <https://doi.org/10.1080/03610919008812866>`_, 1990.
    """
    check.optional(check.prng_key, "random_seed", random_seed, False)

    def init(params):
        del params
        return HutchinsonState(key=jax.random.PRNGKey(0) if random_seed is None else random_seed)

    def update(updates, state, params=None, obj_fn=None, **extra_args):
        del updates, extra_args
        check.params_given("hutchinson_estimator_diag_hessian", params)
        if obj_fn is None:
            raise ValueError(
                "obj_fn must be passed to hutchinson_estimator_diag_hessian's update, got None;"
                " pass the loss as a function of the params: tx.update(g, s, p, obj_fn=loss)"
            )
        key, subkey = jax.random.split(state.key)
        structure = jax.tree.structure(params)
        keys = jax.tree.unflatten(structure, list(jax.random.split(subkey, structure.num_leaves)))
        signs = jax.tree.map(
            lambda p, k: jax.random.rademacher(k, p.shape, jnp.float32), params, keys
        )
        signs = jtree.cast(signs, jtree.dtype(params, "lowest"))
        hvp = jax.jvp(jax.grad(obj_fn), (params,), (signs,))[1]
        return jtree.mul(hvp, signs), HutchinsonState(key=key)

    return GradientTransformationExtraArgs(init, update)


class SophiaState(NamedTuple):
    """State of :func:`scale_by_sophia`."""

    count: jax.Array  # int32 scalar, steps seen (saturates)
    mu: Updates  # EMA of the gradients, like params (mu_dtype)
    nu: Updates  # EMA of the Hessian diagonal estimates, like params
    hessian_fn_state: OptState  # the Hessian estimator's state


def scale_by_sophia(
    b1: float = 0.965,
    b2: float = 0.99,
    eps: float = 1e-8,
    gamma: float = 0.01,
    clip_threshold: float | None = 1.0,
    update_interval: int = 10,
    hessian_diagonal_fn: GradientTransformation | None = None,
    mu_dtype: Any | None = None,
    verbose: bool = False,
    print_win_rate_every_n_steps: int = 0,
) -> GradientTransformationExtraArgs:
    r"""Rescale updates by Sophia: momentum over a clipped, scaled Hessian diagonal.

    .. math::

        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        u_t = \operatorname{clip}\!\Big(\frac{m_t/(1-\beta_1^t)}{\max(\gamma h_{t-1},
            \epsilon)}, \pm\rho\Big), \quad
        h_t = \beta_2 h_{t-1} + (1-\beta_2)\,\widehat{\operatorname{diag} H}_t

    :math:`h` is refreshed every ``update_interval`` steps (from step 0) only. Needs
    ``params`` and whatever ``hessian_diagonal_fn`` needs (``obj_fn`` for the default).

    Args:
      b1: :math:`\beta_1`, momentum decay, in [0, 1). Default 0.965.
      b2: :math:`\beta_2`, decay of the Hessian EMA (per refresh), in [0, 1). Default 0.99.
      eps: lower bound of the denominator, >= 0. Default 1e-8.
      gamma: :math:`\gamma`, scale of the Hessian diagonal, >= 0. Default 0.01.
      clip_threshold: :math:`\rho`, > 0, or None for no clipping. Default 1.
      update_interval: steps between Hessian refreshes, an integer >= 1. Default 10.
      hessian_diagonal_fn: a transform returning the Hessian diagonal estimate; None
        uses :func:`hutchinson_estimator_diag_hessian`.
      mu_dtype: dtype of the momentum; None keeps the gradients' dtype.
      verbose: print the fraction of unclipped coordinates (the win rate).
      print_win_rate_every_n_steps: with ``verbose``, the printing period, >= 1.

    References:
      Liu et al., `Sophia: A Scalable Stochastic Second-order Optimizer for Language Model
      Pre-training <https://arxiv.org/abs/2305.14342>`_, ICLR 2024.
    """
    check.unit_interval("b1", b1, "pass a value in [0, 1) such as 0.965")
    check.unit_interval("b2", b2, "pass a value in [0, 1) such as 0.99")
    check.non_negative("eps", eps)
    check.non_negative("gamma", gamma)
    check.optional(check.positive, "clip_threshold", clip_threshold)
    check.integer("update_interval", update_interval, minimum=1)
    if hessian_diagonal_fn is None:
        hessian_diagonal_fn = hutchinson_estimator_diag_hessian()
    check.transformation("hessian_diagonal_fn", hessian_diagonal_fn)
    mu_dtype = check.dtype("mu_dtype", mu_dtype)
    check.boolean("verbose", verbose)
    check.integer(  # the period is only used (and must be >= 1) with verbose
        "print_win_rate_every_n_steps", print_win_rate_every_n_steps, minimum=1 if verbose else 0
    )
    estimator = with_extra_args_support(hessian_diagonal_fn)

    def init(params):
        return SophiaState(
            count=zero_count(),
            mu=jtree.zeros_like(params, dtype=mu_dtype),
            nu=jtree.zeros_like(params),
            hessian_fn_state=estimator.init(params),
        )

    def update(updates, state, params=None, **extra_args):
        check.params_given("scale_by_sophia", params)
        count = jtree.safe_increment(state.count)
        grads = updates
        mu = jtree.update_moment(updates, state.mu, b1, 1)
        mu_hat = jtree.bias_correction(mu, b1, count)
        out = jax.tree.map(lambda m, h: m / jnp.maximum(gamma * h, eps), mu_hat, state.nu)
        if clip_threshold is not None:
            if verbose:
                unclipped = jtree.sum(jax.tree.map(lambda u: jnp.abs(u) < clip_threshold, out))
                win_rate = unclipped / jtree.size(out)
                jax.lax.cond(
                    count % print_win_rate_every_n_steps == 0,
                    lambda: jax.debug.print("Sophia optimizer win rate: {}", win_rate),
                    lambda: None,
                )
            out = jtree.clip(out, -clip_threshold, clip_threshold)

        def refresh(estimator_state, nu):
            diag, estimator_state = estimator.update(
                grads, estimator_state, params=params, **extra_args
            )
            return estimator_state, jtree.update_moment(diag, nu, b2, 1)

        estimator_state, nu = jax.lax.cond(
            state.count % update_interval == 0,
            refresh,
            lambda s, n: (s, n),
            state.hessian_fn_state,
            state.nu,
        )
        return out, SophiaState(count, jtree.cast(mu, mu_dtype), nu, estimator_state)

    return GradientTransformationExtraArgs(init, update)


def sophia(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.965,
    b2: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 1e-4,
    weight_decay_mask: Any | Callable[[Any], Any] | None = None,
    gamma: float = 0.01,
    clip_threshold: float | None = 1.0,
    update_interval: int = 10,
    hessian_diagonal_fn: GradientTransformation | None = None,
    mu_dtype: Any | None = None,
    verbose: bool = False,
    print_win_rate_every_n_steps: int = 0,
) -> GradientTransformationExtraArgs:
    r"""Sophia (see :func:`scale_by_sophia`), with decoupled weight decay.

    .. math::  x_{t+1} = x_t - \alpha_t\,\big(u_t^{\text{Sophia}} + \lambda x_t\big)

    ``update`` needs ``obj_fn`` (the loss as a function of the params) for the default
    Hutchinson estimator.

    Args:
      learning_rate: :math:`\alpha_t`, a number >= 0 or a schedule.
      b1: momentum decay, in [0, 1). Default 0.965.
      b2: decay of the Hessian EMA, in [0, 1). Default 0.99.
      eps: lower bound of the denominator, >= 0. Default 1e-8.
      weight_decay: :math:`\lambda`, >= 0. Default 1e-4.
      weight_decay_mask: tree of booleans (or a function of the params) selecting the
        leaves to decay.
      gamma: scale of the Hessian diagonal, >= 0. Default 0.01.
      clip_threshold: > 0, or None for no clipping. Default 1.
      update_interval: steps between Hessian refreshes, >= 1. Default 10.
      hessian_diagonal_fn: the Hessian diagonal estimator; None for Hutchinson's.
      mu_dtype: dtype of the momentum; None keeps the gradients' dtype.
      verbose: print the win rate.
      print_win_rate_every_n_steps: with ``verbose``, the printing period, >= 1.

    References:
      Liu et al., `Sophia: A Scalable Stochastic Second-order Optimizer for Language Model
      Pre-training <https://arxiv.org/abs/2305.14342>`_, ICLR 2024.
    """
    check.learning_rate("learning_rate", learning_rate)
    check.optional(check.mask, "weight_decay_mask", weight_decay_mask)
    return chain(
        scale_by_sophia(
            b1, b2, eps, gamma, clip_threshold, update_interval, hessian_diagonal_fn,
            mu_dtype, verbose, print_win_rate_every_n_steps,
        ),
        add_decayed_weights(weight_decay, mask=weight_decay_mask),
        scale_by_learning_rate(learning_rate),
    )  # fmt: skip
