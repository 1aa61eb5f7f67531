r"""Adam-style scaling: debiased first and second moments (Adam, AMSGrad, Adamax, RAdam).

Moments are kept in ``mu_dtype`` / ``nu_dtype`` (default: the params' dtype); the
bias corrections :math:`1-\beta^t` are computed in float32 and only then cast, so a
bfloat16 moment never divides by a rounded-to-zero correction.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree
from jopt.base import GradientTransformation, Updates
from jopt.schedules._hyper import zero_count


class ScaleByAdamState(NamedTuple):
    """State of :func:`scale_by_adam`, :func:`scale_by_adamax`, :func:`scale_by_radam` and
    :func:`scale_by_yogi` (``ScaleByYogiState`` is this class, as in optax)."""

    count: jax.Array  # int32 scalar, number of updates seen (saturates)
    mu: Updates  # first moment, like params (mu_dtype if set)
    nu: Updates  # second (Adamax: infinity) moment, like params (nu_dtype if set)


class ScaleByAmsgradState(NamedTuple):
    """State of :func:`scale_by_amsgrad`."""

    count: jax.Array  # int32 scalar, number of updates seen (saturates)
    mu: Updates  # first moment, like params (mu_dtype if set)
    nu: Updates  # second moment, like params
    nu_max: Updates  # running maximum of the (corrected) second moment, like params


def _check_moments(b1, b2, eps, eps_root=0.0) -> None:
    check.unit_interval("b1", b1)
    check.unit_interval("b2", b2, "pass a value in [0, 1) such as 0.999")
    check.non_negative("eps", eps, "pass a small value such as 1e-8")
    check.non_negative("eps_root", eps_root, "pass 0.0 or a small value such as 1e-8")


def _first_moment_hat(mu, updates, b1, count, nesterov):
    """Debiased first moment; Nesterov looks one step ahead (Dozat, 2016)."""
    if not nesterov:
        return tree.bias_correction(mu, b1, count)
    ahead = tree.bias_correction(mu, b1, tree.safe_increment(count))
    now = tree.bias_correction(updates, b1, count)
    return jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, ahead, now)


def _adam_direction(mu_hat, nu_hat, eps, eps_root):
    return jax.tree.map(lambda m, v: m / (jnp.sqrt(v + eps_root) + eps), mu_hat, nu_hat)


def scale_by_adam(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""Scale updates by Adam's debiased moments.

    .. math::
      m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
      v_t = \beta_2 v_{t-1} + (1-\beta_2) |g_t|^2, \quad
      u_t = \frac{\hat m_t}{\sqrt{\hat v_t + \epsilon_{root}} + \epsilon}

    with :math:`\hat m_t = m_t/(1-\beta_1^t)` (Nesterov:
    :math:`\beta_1 m_t/(1-\beta_1^{t+1}) + (1-\beta_1) g_t/(1-\beta_1^t)`) and
    :math:`\hat v_t = v_t/(1-\beta_2^t)`.

    Args:
      b1: :math:`\beta_1`, decay of the first moment, in [0, 1); default 0.9.
      b2: :math:`\beta_2`, decay of the second moment, in [0, 1); default 0.999.
      eps: :math:`\epsilon`, added outside the root, >= 0; default 1e-8.
      eps_root: :math:`\epsilon_{root}`, added inside the root, >= 0 (useful when
        differentiating through the update); default 0.
      mu_dtype: dtype of :math:`m`; None keeps the params' dtype.
      nesterov: use Nesterov momentum (NAdam).
      nu_dtype: dtype of :math:`v` (not in optax), e.g. ``jnp.float32`` moments for
        bfloat16 params; the update keeps the dtype it would have without it.
        None keeps the params' dtype.

    References:
      Kingma & Ba, `Adam: A Method for Stochastic Optimization
      <https://arxiv.org/abs/1412.6980>`_, 2014;
      Dozat, `Incorporating Nesterov Momentum into Adam
      <https://openreview.net/pdf?id=OM0jvwB8jIp57ZJjtNEZ>`_, 2016.
    """
    _check_moments(b1, b2, eps, eps_root)
    mu_dtype = check.dtype("mu_dtype", mu_dtype)
    nu_dtype = check.dtype("nu_dtype", nu_dtype)
    check.boolean("nesterov", nesterov)

    def init(params):
        return ScaleByAdamState(
            count=zero_count(),
            mu=tree.zeros_like(params, dtype=mu_dtype),
            nu=tree.zeros_like(params, dtype=nu_dtype),
        )

    def update(updates, state, params=None):
        del params
        mu = tree.update_moment(updates, state.mu, b1, 1)
        squared_from = updates
        if nu_dtype is not None:
            # Square in the wider of the two dtypes, or a float32 nu would only
            # accumulate bfloat16-rounded squares.
            squared_from = jax.tree.map(
                lambda g, v: g.astype(jnp.promote_types(g.dtype, v.dtype)), updates, state.nu
            )
        nu = tree.update_moment_per_elem_norm(squared_from, state.nu, b2, 2)
        count = tree.safe_increment(state.count)
        mu_hat = _first_moment_hat(mu, updates, b1, count, nesterov)
        nu_hat = tree.bias_correction(nu, b2, count)
        out = _adam_direction(mu_hat, nu_hat, eps, eps_root)
        if nu_dtype is not None:
            # A wider nu must not widen the update: keep the numerator's dtype.
            out = tree.cast_like(out, mu_hat)
        mu = tree.cast(mu, mu_dtype)
        nu = tree.cast_like(nu, state.nu)
        return out, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init, update)


def scale_by_amsgrad(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    mu_dtype: Any = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
) -> GradientTransformation:
    r"""Scale updates by AMSGrad: Adam with a non-decreasing second moment.

    .. math::
      \bar v_t = \max(\bar v_{t-1}, \hat v_t), \qquad
      u_t = \frac{\hat m_t}{\sqrt{\bar v_t + \epsilon_{root}} + \epsilon}

    with :math:`m, v, \hat m, \hat v` as in :func:`scale_by_adam`.

    Args:
      b1: decay of the first moment, in [0, 1); default 0.9.
      b2: decay of the second moment, in [0, 1); default 0.999.
      eps: added outside the root, >= 0; default 1e-8.
      eps_root: added inside the root, >= 0; default 0.
      mu_dtype: dtype of the first moment; None keeps the params' dtype.
      bias_correction_mu: debias :math:`m` (False matches the paper).
      bias_correction_nu: debias :math:`v` before the maximum (False matches the paper).

    References:
      Reddi et al., `On the Convergence of Adam and Beyond
      <https://openreview.net/forum?id=ryQu7f-RZ>`_, 2018.
    """
    _check_moments(b1, b2, eps, eps_root)
    mu_dtype = check.dtype("mu_dtype", mu_dtype)
    check.boolean("bias_correction_mu", bias_correction_mu)
    check.boolean("bias_correction_nu", bias_correction_nu)

    def init(params):
        return ScaleByAmsgradState(
            count=zero_count(),
            mu=tree.zeros_like(params, dtype=mu_dtype),
            nu=tree.zeros_like(params),
            nu_max=tree.zeros_like(params),
        )

    def update(updates, state, params=None):
        del params
        mu = tree.update_moment(updates, state.mu, b1, 1)
        nu = tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
        count = tree.safe_increment(state.count)
        mu_hat = tree.bias_correction(mu, b1, count) if bias_correction_mu else mu
        nu_hat = tree.bias_correction(nu, b2, count) if bias_correction_nu else nu
        nu_max = jax.tree.map(jnp.maximum, state.nu_max, nu_hat)
        out = _adam_direction(mu_hat, nu_max, eps, eps_root)
        mu = tree.cast(mu, mu_dtype)
        return out, ScaleByAmsgradState(count=count, mu=mu, nu=nu, nu_max=nu_max)

    return GradientTransformation(init, update)


def scale_by_adamax(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
) -> GradientTransformation:
    r"""Scale updates by Adamax: Adam with an infinity-norm second moment.

    .. math::
      v_t = \max(|g_t| + \epsilon, \beta_2 v_{t-1}), \qquad u_t = \hat m_t / v_t

    with :math:`\hat m_t` as in :func:`scale_by_adam` (the maximum needs no debiasing).

    Args:
      b1: decay of the first moment, in [0, 1); default 0.9.
      b2: decay of the infinity norm, in [0, 1); default 0.999.
      eps: added to :math:`|g|`, >= 0; default 1e-8.

    References:
      Kingma & Ba, `Adam: A Method for Stochastic Optimization
      <https://arxiv.org/abs/1412.6980>`_ (section 7.1), 2014.
    """
    _check_moments(b1, b2, eps)

    def init(params):
        return ScaleByAdamState(
            count=zero_count(), mu=tree.zeros_like(params), nu=tree.zeros_like(params)
        )

    def update(updates, state, params=None):
        del params
        count = tree.safe_increment(state.count)
        mu = tree.update_moment(updates, state.mu, b1, 1)
        nu = tree.update_infinity_moment(updates, state.nu, b2, eps)
        out = tree.div(tree.bias_correction(mu, b1, count), nu)
        return out, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init, update)


def scale_by_radam(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    threshold: float | jax.Array = 5.0,
    *,
    nesterov: bool = False,
) -> GradientTransformation:
    r"""Scale updates by Rectified Adam: momentum SGD until the variance is tractable.

    .. math::
      \rho_\infty = \frac{2}{1-\beta_2} - 1, \quad
      \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1-\beta_2^t}, \quad
      u_t = \begin{cases}
        r_t\, \hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon) & \rho_t \ge \tau \\
        \hat m_t & \text{otherwise}\end{cases}

    with :math:`r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}
    {(\rho_\infty-4)(\rho_\infty-2)\rho_t}}` and :math:`\hat m, \hat v` as in
    :func:`scale_by_adam`.

    Args:
      b1: decay of the first moment, in [0, 1); default 0.9.
      b2: decay of the second moment, in [0, 1); default 0.999.
      eps: added outside the root, >= 0; default 1e-8.
      eps_root: added inside the root, >= 0; default 0.
      threshold: :math:`\tau`, the tractability threshold on :math:`\rho_t`, >= 0; default 5.
      nesterov: use Nesterov momentum.

    References:
      Liu et al., `On the Variance of the Adaptive Learning Rate and Beyond
      <https://arxiv.org/abs/1908.03265>`_, 2020.
    """
    _check_moments(b1, b2, eps, eps_root)
    check.non_negative(
        "threshold", threshold, "pass the tractability threshold on rho_t, e.g. 5.0 (the default)"
    )
    check.boolean("nesterov", nesterov)
    rho_inf = 2.0 / (1.0 - b2) - 1.0

    def init(params):
        return ScaleByAdamState(
            count=zero_count(), mu=tree.zeros_like(params), nu=tree.zeros_like(params)
        )

    def update(updates, state, params=None):
        del params
        mu = tree.update_moment(updates, state.mu, b1, 1)
        nu = tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
        count = tree.safe_increment(state.count)
        b2_t = b2**count
        rho = rho_inf - 2 * count * b2_t / (1 - b2_t)
        mu_hat = _first_moment_hat(mu, updates, b1, count, nesterov)
        nu_hat = tree.bias_correction(nu, b2, count)
        r = jnp.sqrt(
            (rho - 4.0) * (rho - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho)
        )
        rectified = jax.tree.map(
            lambda m, v: r.astype(m.dtype) * m / (jnp.sqrt(v + eps_root) + eps), mu_hat, nu_hat
        )
        out = jax.tree.map(lambda a, m: jnp.where(rho >= threshold, a, m), rectified, mu_hat)
        return out, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init, update)
