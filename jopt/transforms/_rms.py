r"""Scaling by accumulated squared gradients: RMSProp, centered RMSProp, AdaGrad, AdaDelta.

``scale_by_rms`` and ``scale_by_stddev`` keep a step count only when
``bias_correction=True`` (the ``...WithCountState`` types), as optax does, so that
states saved by either library have the same fields.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree
from jopt.base import GradientTransformation, Updates
from jopt.schedules._hyper import zero_count


class ScaleByRmsState(NamedTuple):
    """State of :func:`scale_by_rms` without bias correction."""

    nu: Updates  # moving average of squared gradients, like params


class ScaleByRmsWithCountState(NamedTuple):
    """State of :func:`scale_by_rms` with ``bias_correction=True``."""

    count: jax.Array  # int32 scalar, number of updates seen (saturates)
    nu: Updates  # moving average of squared gradients, like params


class ScaleByRStdDevState(NamedTuple):
    """State of :func:`scale_by_stddev` without bias correction."""

    mu: Updates  # moving average of gradients, like params
    nu: Updates  # moving average of squared gradients, like params


class ScaleByRStdDevWithCountState(NamedTuple):
    """State of :func:`scale_by_stddev` with ``bias_correction=True``."""

    count: jax.Array  # int32 scalar, number of updates seen (saturates)
    mu: Updates  # moving average of gradients, like params
    nu: Updates  # moving average of squared gradients, like params


class ScaleByRssState(NamedTuple):
    """State of :func:`scale_by_rss`."""

    sum_of_squares: Updates  # running sum of squared gradients, like params


class ScaleByAdaDeltaState(NamedTuple):
    """State of :func:`scale_by_adadelta`."""

    e_g: Updates  # moving average of squared gradients, like params
    e_x: Updates  # moving average of squared updates, like params


def _check_rms(decay, eps, initial_scale, eps_in_sqrt, bias_correction) -> None:
    # decay=1 would freeze nu at initial_scale: with the default 0 an update is g / sqrt(eps).
    check.average_decay("decay", decay)
    check.non_negative("eps", eps, "pass a small value such as 1e-8")
    check.non_negative("initial_scale", initial_scale, "pass 0.0 or a positive value such as 1.0")
    check.boolean("eps_in_sqrt", eps_in_sqrt)
    check.boolean("bias_correction", bias_correction)


def _inverse_root(x, eps, eps_in_sqrt):
    return jax.lax.rsqrt(x + eps) if eps_in_sqrt else 1 / (jnp.sqrt(x) + eps)


def scale_by_rms(
    decay: float | jax.Array = 0.9,
    eps: float | jax.Array = 1e-8,
    initial_scale: float | jax.Array = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
) -> GradientTransformation:
    r"""Divide updates by the root of a moving average of squared gradients (RMSProp).

    .. math::
      \nu_t = \rho\,\nu_{t-1} + (1-\rho)\,|g_t|^2, \qquad
      u_t = g_t / \sqrt{\hat\nu_t + \epsilon} \quad (\text{or } g_t / (\sqrt{\hat\nu_t} + \epsilon))

    with :math:`\hat\nu_t = \nu_t / (1-\rho^t)` if ``bias_correction`` else :math:`\nu_t`.
    ``scale_by_rms(b2, eps_in_sqrt=False, bias_correction=True)`` equals
    ``scale_by_adam(b1=0, b2=b2)`` without storing a first moment.

    Args:
      decay: :math:`\rho`, in [0, 1) (1 would freeze nu at initial_scale); default 0.9.
      eps: :math:`\epsilon` >= 0; default 1e-8.
      initial_scale: initial :math:`\nu_0` >= 0; default 0.
      eps_in_sqrt: add :math:`\epsilon` inside the root (default) or outside.
      bias_correction: debias :math:`\nu`; default False.

    References:
      Tieleman & Hinton, `Lecture 6.5 - RMSProp
      <https://www.cs.toronto.edu/~tijmen/csc321/slides/lecture_slides_lec6.pdf>`_, 2012.
    """
    _check_rms(decay, eps, initial_scale, eps_in_sqrt, bias_correction)

    def init(params):
        nu = tree.full_like(params, initial_scale)
        return (
            ScaleByRmsWithCountState(zero_count(), nu) if bias_correction else ScaleByRmsState(nu)
        )

    def update(updates, state, params=None):
        del params
        nu = tree.update_moment_per_elem_norm(updates, state.nu, decay, 2)
        if bias_correction:
            count = tree.safe_increment(state.count)
            nu_hat = tree.bias_correction(nu, decay, count)
        else:
            nu_hat = nu
        out = jax.tree.map(lambda n, g: _inverse_root(n, eps, eps_in_sqrt) * g, nu_hat, updates)
        new = ScaleByRmsWithCountState(count, nu) if bias_correction else ScaleByRmsState(nu)
        return out, new

    return GradientTransformation(init, update)


def scale_by_stddev(
    decay: float | jax.Array = 0.9,
    eps: float | jax.Array = 1e-8,
    initial_scale: float | jax.Array = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
) -> GradientTransformation:
    r"""Divide updates by a running standard deviation of the gradients (centered RMSProp).

    .. math::
      \mu_t = \rho\,\mu_{t-1} + (1-\rho)\,g_t, \quad
      \nu_t = \rho\,\nu_{t-1} + (1-\rho)\,|g_t|^2, \quad
      u_t = g_t / \sqrt{\hat\nu_t - |\hat\mu_t|^2 + \epsilon}

    (or :math:`g_t / (\sqrt{\hat\nu_t - |\hat\mu_t|^2} + \epsilon)`), hats meaning
    debiased when ``bias_correction``.

    Args:
      decay: :math:`\rho`, in [0, 1) (1 would freeze nu at initial_scale); default 0.9.
      eps: :math:`\epsilon` >= 0; default 1e-8.
      initial_scale: initial :math:`\nu_0` >= 0; default 0.
      eps_in_sqrt: add :math:`\epsilon` inside the root (default) or outside.
      bias_correction: debias :math:`\mu` and :math:`\nu`; default False.

    References:
      Graves, `Generating Sequences With Recurrent Neural Networks
      <https://arxiv.org/abs/1308.0850>`_, 2013.
    """
    _check_rms(decay, eps, initial_scale, eps_in_sqrt, bias_correction)

    def init(params):
        mu, nu = tree.zeros_like(params), tree.full_like(params, initial_scale)
        if bias_correction:
            return ScaleByRStdDevWithCountState(zero_count(), mu, nu)
        return ScaleByRStdDevState(mu, nu)

    def update(updates, state, params=None):
        del params
        mu = tree.update_moment(updates, state.mu, decay, 1)
        nu = tree.update_moment_per_elem_norm(updates, state.nu, decay, 2)
        if bias_correction:
            count = tree.safe_increment(state.count)
            mu_hat = tree.bias_correction(mu, decay, count)
            nu_hat = tree.bias_correction(nu, decay, count)
        else:
            mu_hat, nu_hat = mu, nu
        out = jax.tree.map(
            lambda m, n, g: _inverse_root(n - tree.abs_sq(m), eps, eps_in_sqrt) * g,
            mu_hat, nu_hat, updates,
        )  # fmt: skip
        if bias_correction:
            return out, ScaleByRStdDevWithCountState(count, mu, nu)
        return out, ScaleByRStdDevState(mu, nu)

    return GradientTransformation(init, update)


def scale_by_rss(
    initial_accumulator_value: float | jax.Array = 0.1, eps: float | jax.Array = 1e-7
) -> GradientTransformation:
    r"""Divide updates by the root of the sum of all squared gradients so far (AdaGrad).

    .. math::
      s_t = s_{t-1} + |g_t|^2, \qquad u_t = g_t / \sqrt{s_t + \epsilon} \ (0 \text{ where } s_t = 0)

    Args:
      initial_accumulator_value: :math:`s_0` >= 0; default 0.1.
      eps: :math:`\epsilon` >= 0; default 1e-7.

    References:
      Duchi et al., `Adaptive Subgradient Methods for Online Learning and Stochastic
      Optimization <https://jmlr.org/papers/v12/duchi11a.html>`_, 2011.
    """
    check.non_negative("initial_accumulator_value", initial_accumulator_value)
    check.non_negative("eps", eps, "pass a small value such as 1e-7")

    def init(params):
        return ScaleByRssState(sum_of_squares=tree.full_like(params, initial_accumulator_value))

    def update(updates, state, params=None):
        del params
        sum_of_squares = jax.tree.map(
            lambda g, s: tree.abs_sq(g) + s, updates, state.sum_of_squares
        )
        out = jax.tree.map(
            lambda s, g: jnp.where(s > 0, jax.lax.rsqrt(s + eps), 0.0) * g, sum_of_squares, updates
        )
        return out, ScaleByRssState(sum_of_squares=sum_of_squares)

    return GradientTransformation(init, update)


def scale_by_adadelta(
    rho: float | jax.Array = 0.9, eps: float | jax.Array = 1e-6
) -> GradientTransformation:
    r"""Scale updates by AdaDelta's ratio of running update and gradient magnitudes.

    .. math::
      E[g^2]_t = \rho E[g^2]_{t-1} + (1-\rho) g_t^2, \quad
      u_t = \frac{\sqrt{E[x^2]_{t-1} + \epsilon}}{\sqrt{E[g^2]_t + \epsilon}}\, g_t, \quad
      E[x^2]_t = \rho E[x^2]_{t-1} + (1-\rho) u_t^2

    Args:
      rho: :math:`\rho`, in [0, 1) (1 would freeze both accumulators); default 0.9.
      eps: :math:`\epsilon` >= 0; default 1e-6.

    References:
      Zeiler, `ADADELTA: An Adaptive Learning Rate Method
      <https://arxiv.org/abs/1212.5701>`_, 2012.
    """
    check.average_decay("rho", rho)  # 1 freezes both accumulators at 0
    check.non_negative("eps", eps, "pass a small value such as 1e-6")

    def init(params):
        return ScaleByAdaDeltaState(e_g=tree.zeros_like(params), e_x=tree.zeros_like(params))

    def update(updates, state, params=None):
        del params
        e_g = tree.update_moment(updates, state.e_g, rho, 2)
        out = jax.tree.map(
            lambda g, eg, ex: (jnp.sqrt(ex + eps) / jnp.sqrt(eg + eps)) * g,
            updates, e_g, state.e_x,
        )  # fmt: skip
        e_x = tree.update_moment(out, state.e_x, rho, 2)
        return out, ScaleByAdaDeltaState(e_g=e_g, e_x=e_x)

    return GradientTransformation(init, update)
