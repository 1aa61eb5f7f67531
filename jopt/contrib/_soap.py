"""SOAP: Adam run in the eigenbasis of Shampoo's Kronecker factors."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt._flat._capability import refuse_flat
from jopt.base import GradientTransformation, ScalarOrSchedule, Updates
from jopt.contrib import _soap_bases as bases_of
from jopt.schedules._hyper import value_at, zero_count
from jopt.transforms import chain, scale_by_learning_rate
from jopt.tree import safe_increment

_DATA_FORMATS = ("channels_first", "channels_last")


class ScaleBySoapState(NamedTuple):
    """State of :func:`scale_by_soap`."""

    count: jax.Array  # int32 scalar, calls seen (saturates); call 0 only builds the bases
    mu: Updates  # EMA of the rotated gradients, like params (float32 or wider), eigenbasis
    nu: Updates  # EMA of their squares, like params (float32 or wider), eigenbasis
    factors: Any  # per leaf a tuple of (d_k, d_k) float32 EMAs of G_(k) G_(k)^T
    bases: Any  # per leaf a tuple of (d_k, d_k) float32 eigenbases Q_k of the factors


def _moment_dtype(leaf: Any) -> Any:
    return jnp.promote_types(jnp.result_type(leaf), jnp.float32)


def _factor_decay(shampoo_beta: Any, b2: Any) -> Any:
    """soap.py's rule: a negative ``shampoo_beta`` means ``b2`` (traced values too)."""
    if isinstance(shampoo_beta, (int, float)):
        return shampoo_beta if shampoo_beta >= 0 else b2
    return jnp.where(shampoo_beta >= 0, shampoo_beta, b2)


def _check_soap(b1, b2, shampoo_beta, eps, precondition_frequency, max_precond_dim, flags):
    check.average_decay("b1", b1, "0.95")
    check.average_decay("b2", b2, "0.95")
    beta = check.number("shampoo_beta", shampoo_beta)
    if beta is not None and beta >= 0:  # negative: use b2, as soap.py
        check.average_decay("shampoo_beta", shampoo_beta, "0.95, or -1 to use b2")
    check.non_negative("eps", eps)
    check.integer("precondition_frequency", precondition_frequency, minimum=1)
    check.integer("max_precond_dim", max_precond_dim, minimum=1)
    for name, value in flags.items():
        check.boolean(name, value)


def scale_by_soap(
    b1: float = 0.95,
    b2: float = 0.95,
    shampoo_beta: float = -1,
    eps: float = 1e-8,
    precondition_frequency: int = 10,
    max_precond_dim: int = 10000,
    merge_dims: bool = False,
    precondition_1d: bool = False,
    normalize_grads: bool = False,
    data_format: Literal["channels_first", "channels_last"] = "channels_first",
    correct_bias: bool = True,
) -> GradientTransformation:
    r"""Rescale updates by SOAP: Adam in the eigenbasis of Shampoo's Kronecker factors.

    For a leaf :math:`G_t` with factors on axes :math:`k` (``max_precond_dim`` rule):

    .. math::

        \tilde G_t = G_t \times_k Q_k^\top, \quad
        m_t = \beta_1 m_{t-1} + (1-\beta_1)\tilde G_t, \quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2)\tilde G_t^2, \\
        u_t = \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\,
              \Big(\frac{m_t}{\sqrt{v_t}+\epsilon}\Big) \times_k Q_k, \quad
        L_k \leftarrow \beta_s L_k + (1-\beta_s)\, G_{t(k)} G_{t(k)}^\top

    As soap.py, the first call only builds :math:`L_k` and
    :math:`Q_k = \operatorname{eigh}(L_k + 10^{-30} I)` (descending) and returns zeros; the
    bias-correction count :math:`t` starts at the second call. The factors are updated after
    the step; every ``precondition_frequency`` steps (under ``lax.cond``) each basis is
    refreshed by one power iteration and QR, columns re-sorted by
    :math:`\operatorname{diag}(Q^\top L Q)` with :math:`v` permuted alike, and :math:`m`
    re-expressed in the new basis. Scalars, 1-D leaves (unless ``precondition_1d``) and
    axes longer than ``max_precond_dim`` are not rotated (Adam on those axes). Factors,
    bases, eigh and QR are float32 whatever the leaf's dtype; m and v are float32 (or the
    leaf's dtype if wider); updates keep the gradient's dtype.

    Memory: :math:`2N + 2\sum_k d_k^2` floats for a leaf of :math:`N` parameters. Cost: four
    rotations and the factor products, :math:`O(N\sum_k d_k)`, every step; a QR,
    :math:`O(d_k^3)`, every ``precondition_frequency`` steps; eigh once.

    With a repeated gradient (full batch: the first call moves nothing) the second gradient
    is diagonal in the first bases; its other entries are rounding noise that Adam's first
    step (about :math:`\pm 1` per entry) turns into steps of arbitrary sign, as in soap.py,
    so programs that round differently part after step 2 there.

    Args:
      b1: :math:`\beta_1`, in [0, 1). Default 0.95.
      b2: :math:`\beta_2`, in [0, 1). Default 0.95.
      shampoo_beta: :math:`\beta_s`, the factors' decay, in [0, 1); negative (default -1)
        uses ``b2``.
      eps: :math:`\epsilon`, added to :math:`\sqrt{v_t}`, >= 0. Default 1e-8.
      precondition_frequency: steps between basis refreshes, an integer >= 1. Default 10.
      max_precond_dim: longest axis that gets a factor, an integer >= 1. Default 10000.
      merge_dims: fuse neighbouring axes while their product is <= ``max_precond_dim``.
      precondition_1d: give 1-D leaves a factor too.
      normalize_grads: divide each leaf's update by its root mean square.
      data_format: ``"channels_first"`` (NCHW) or ``"channels_last"`` (NHWC: a 4-D leaf is
        transposed to NCHW before merging); only read with ``merge_dims``.
      correct_bias: apply Adam's bias correction.

    References:
      Vyas et al., `SOAP: Improving and Stabilizing Shampoo using Adam
      <https://arxiv.org/abs/2409.11321>`_, ICLR 2025; reference code nikhilvyas/SOAP.
    """
    flags = {"merge_dims": merge_dims, "precondition_1d": precondition_1d,
             "normalize_grads": normalize_grads, "correct_bias": correct_bias}  # fmt: skip
    _check_soap(b1, b2, shampoo_beta, eps, precondition_frequency, max_precond_dim, flags)
    check.one_of("data_format", data_format, _DATA_FORMATS)
    rules = {"max_precond_dim": max_precond_dim, "merge_dims": merge_dims,
             "precondition_1d": precondition_1d,
             "channels_last": data_format == "channels_last"}  # fmt: skip

    def plan(leaf):
        return bases_of.layout(jnp.shape(leaf), **rules)

    def init(params):
        refuse_flat("scale_by_soap", params)

        def zero_factors(leaf):
            sizes = bases_of.factor_sizes(plan(leaf))
            return tuple(jnp.zeros((d, d), bases_of.FACTOR_DTYPE) for d in sizes)

        def zero_moment(leaf):
            return jnp.zeros(jnp.shape(leaf), _moment_dtype(leaf))

        moments = jax.tree.map(zero_moment, params)
        factors = jax.tree.map(zero_factors, params)
        return ScaleBySoapState(zero_count(), moments, moments, factors, factors)

    def first_call(grads, leaves, beta):
        """Build the factors and their eigenbases; move nothing."""
        _, _, factors, _ = leaves
        new_factors, new_bases = [], []
        for g, fs in zip(grads, factors, strict=True):
            p = plan(g)
            fs = bases_of.update_factors(fs, bases_of.to_layout(g, p), p.axes, beta)
            new_factors.append(fs)
            new_bases.append(bases_of.eigenbases(fs))
        zeros = [jnp.zeros_like(g) for g in grads]
        return zeros, (leaves[0], leaves[1], new_factors, new_bases)

    def adam_step(g, m, v, qs, p, step_size):
        """One leaf's Adam step in its eigenbasis (layout-shaped m, v)."""
        dtype = m.dtype  # an injected (float64) b1 must not widen the state
        rotated = bases_of.rotate(bases_of.to_layout(g.astype(dtype), p), qs, p.axes, False)
        m = (b1 * m + (1 - b1) * rotated).astype(dtype)
        v = (b2 * v + (1 - b2) * jnp.square(rotated)).astype(dtype)
        direction = bases_of.rotate(m / (jnp.sqrt(v) + eps), qs, p.axes, True)
        if normalize_grads:
            direction = direction / (1e-30 + jnp.sqrt(jnp.mean(jnp.square(direction))))
        out = bases_of.from_layout(step_size * direction, p, jnp.shape(g)).astype(g.dtype)
        return out, m, v

    def refresh(plans, ms, vs, factors, old):
        """Power iteration + QR on every factor; m re-expressed, v permuted (layout-shaped)."""
        new_ms, new_vs, new_bases = [], [], []
        for m, v, fs, qs, p in zip(ms, vs, factors, old, plans, strict=True):
            original = bases_of.rotate(m, qs, p.axes, True)
            qs, v = bases_of.refresh_bases(fs, qs, v, p.axes)
            new_ms.append(bases_of.rotate(original, qs, p.axes, False))
            new_vs.append(v)
            new_bases.append(qs)
        return new_ms, new_vs, new_bases

    def later_call(grads, leaves, beta, t):
        mus, nus, factors, bases = leaves
        tf = t.astype(jnp.float32)
        step_size = jnp.sqrt(1 - b2**tf) / (1 - b1**tf) if correct_bias else 1.0
        plans = [plan(g) for g in grads]
        outs, ms, vs, new_factors = [], [], [], []
        for g, m, v, fs, qs, p in zip(grads, mus, nus, factors, bases, plans, strict=True):
            m, v = bases_of.to_layout(m, p), bases_of.to_layout(v, p)
            out, m, v = adam_step(g, m, v, qs, p, step_size)
            outs.append(out)
            ms.append(m)
            vs.append(v)
            g_layout = bases_of.to_layout(g, p)
            new_factors.append(bases_of.update_factors(fs, g_layout, p.axes, beta))
        ms, vs, bases = jax.lax.cond(
            t % precondition_frequency == 0,
            lambda *leaves: refresh(plans, *leaves),
            lambda ms, vs, fs, qs: (ms, vs, qs),
            ms, vs, new_factors, list(bases),
        )  # fmt: skip
        ms = [
            bases_of.from_layout(m, p, jnp.shape(g))
            for m, p, g in zip(ms, plans, grads, strict=True)
        ]
        vs = [
            bases_of.from_layout(v, p, jnp.shape(g))
            for v, p, g in zip(vs, plans, grads, strict=True)
        ]
        return outs, (ms, vs, new_factors, list(bases))

    def update(updates, state, params=None):
        del params
        treedef = jax.tree.structure(updates)
        grads = treedef.flatten_up_to(updates)
        leaves = tuple(
            list(treedef.flatten_up_to(x)) for x in (state.mu, state.nu, state.factors, state.bases)
        )
        beta = _factor_decay(shampoo_beta, b2)
        outs, (mus, nus, factors, bases) = jax.lax.cond(
            state.count == 0,
            lambda leaves: first_call(grads, leaves, beta),
            lambda leaves: later_call(grads, leaves, beta, state.count),
            leaves,
        )
        new_state = ScaleBySoapState(
            safe_increment(state.count),
            *(treedef.unflatten(x) for x in (mus, nus, factors, bases)),
        )
        return treedef.unflatten(outs), new_state

    return GradientTransformation(init, update)


class _SteppedDecayState(NamedTuple):
    count: jax.Array  # int32 scalar, calls seen (saturates)


def _decay_stepped_params(learning_rate: ScalarOrSchedule, weight_decay: Any):
    r"""soap.py's weight decay, applied to the already stepped params, from the second call.

    .. math::  u \leftarrow u - \eta\lambda\,(x + u), \quad\text{so}\quad
               x_{t+1} = (1 - \eta\lambda)(x_t + u)
    """

    def init(params):
        del params
        return _SteppedDecayState(zero_count())

    def update(updates, state, params=None):
        check.params_given("soap", params)
        rate = value_at(learning_rate, state.count) * weight_decay
        rate = jnp.where(state.count == 0, 0.0, rate).astype(jnp.float32)

        def decay(u, x):
            wide = _moment_dtype(u)
            u_wide = u.astype(wide)
            return (u_wide - rate.astype(wide) * (x.astype(wide) + u_wide)).astype(u.dtype)

        return jax.tree.map(decay, updates, params), _SteppedDecayState(safe_increment(state.count))

    return GradientTransformation(init, update)


def soap(
    learning_rate: ScalarOrSchedule = 3e-3,
    b1: float = 0.95,
    b2: float = 0.95,
    shampoo_beta: float = -1,
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    precondition_frequency: int = 10,
    max_precond_dim: int = 10000,
    merge_dims: bool = False,
    precondition_1d: bool = False,
    normalize_grads: bool = False,
    data_format: Literal["channels_first", "channels_last"] = "channels_first",
    correct_bias: bool = True,
) -> GradientTransformation:
    r"""SOAP (see :func:`scale_by_soap`), with soap.py's decoupled weight decay.

    .. math::  x_{t+1} = (1 - \eta_t\lambda)\,\big(x_t - \eta_t\, u_t^{\text{SOAP}}\big)

    The decay multiplies the already stepped params, as the reference soap.py does, and
    like the step itself it is skipped on the first call (which only builds the bases).
    Defaults are soap.py's.

    Args:
      learning_rate: :math:`\eta_t`, a number >= 0 or a schedule. Default 3e-3.
      b1: :math:`\beta_1`, in [0, 1). Default 0.95.
      b2: :math:`\beta_2`, in [0, 1). Default 0.95.
      shampoo_beta: the factors' decay, in [0, 1); negative (default -1) uses ``b2``.
      eps: added to :math:`\sqrt{v_t}`, >= 0. Default 1e-8.
      weight_decay: :math:`\lambda`, >= 0. Default 0.01.
      precondition_frequency: steps between basis refreshes, >= 1. Default 10.
      max_precond_dim: longest axis that gets a factor, >= 1. Default 10000.
      merge_dims: fuse neighbouring axes while their product fits ``max_precond_dim``.
      precondition_1d: give 1-D leaves a factor too.
      normalize_grads: divide each leaf's update by its root mean square.
      data_format: ``"channels_first"`` or ``"channels_last"`` (read with ``merge_dims``).
      correct_bias: apply Adam's bias correction.

    References:
      Vyas et al., `SOAP: Improving and Stabilizing Shampoo using Adam
      <https://arxiv.org/abs/2409.11321>`_, ICLR 2025.
    """
    check.learning_rate("learning_rate", learning_rate)
    check.non_negative("weight_decay", weight_decay)
    return chain(
        scale_by_soap(b1, b2, shampoo_beta, eps, precondition_frequency, max_precond_dim,
                      merge_dims, precondition_1d, normalize_grads, data_format, correct_bias),
        scale_by_learning_rate(learning_rate),
        _decay_stepped_params(learning_rate, weight_decay),
    )  # fmt: skip
