"""PSGD Kron: momentum preconditioned by a learned Kronecker product of triangular factors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree as jtree
from jopt.base import GradientTransformationExtraArgs, ScalarOrSchedule, Schedule, Updates
from jopt.contrib import _kron_precond as kp
from jopt.contrib import _kron_step as ks
from jopt.schedules._hyper import zero_count
from jopt.transforms import add_decayed_weights, chain, scale_by_learning_rate

PRECISIONS = (None, "bfloat16", "tensorfloat32", "float32")
MEMORY_SAVE_MODES = (None, "one_diag", "all_diag")


def precond_update_prob_schedule(
    max_prob: float = 1.0, min_prob: float = 0.03, decay: float = 0.001, flat_start: float = 500
) -> Schedule:
    r"""The probability of a preconditioner refresh: flat, then an exponential anneal.

    .. math::  p(t) = \min\!\big(\max(p_{\max}\, e^{-\lambda (t - t_0)},\ p_{\min}),\ p_{\max}\big)

    With the defaults the preconditioner is refit every step for 500 steps, then ever more
    rarely, down to about one step in 33 after some 4000 steps.

    Args:
      max_prob: :math:`p_{\max}`, in [0, 1]. Default 1.
      min_prob: :math:`p_{\min}`, in [0, 1]. Default 0.03.
      decay: :math:`\lambda`, >= 0. Default 0.001.
      flat_start: :math:`t_0`, steps at :math:`p_{\max}`, >= 0. Default 500.

    References:
      Li, `Preconditioned Stochastic Gradient Descent <https://arxiv.org/abs/1512.04202>`_,
      IEEE TNNLS 2018; the schedule of psgd-jax's ``kron``.
    """
    check.closed_unit_interval("max_prob", max_prob)
    check.closed_unit_interval("min_prob", min_prob)
    check.non_negative("decay", decay)
    check.non_negative("flat_start", flat_start)

    def schedule(count):
        annealed = max_prob * jnp.exp(-decay * (count - flat_start))
        return jnp.minimum(jnp.maximum(annealed, min_prob), max_prob)

    return schedule


_DEFAULT_PROBABILITY = precond_update_prob_schedule()


class ScaleByKronState(NamedTuple):
    """State of :func:`scale_by_kron`."""

    count: jax.Array  # int32 scalar, steps seen (saturates); with a fixed key, the randomness
    mu: Updates | None  # momentum, like params (mu_dtype); None when b1 == 0
    preconditioners: (
        Any  # per leaf a tuple of factors Q_k (d x d upper triangular or d), precond_dtype
    )
    update_counter: jax.Array  # int32 scalar, steps since the last preconditioner refresh


def scale_by_kron(
    b1: float = 0.9,
    preconditioner_update_probability: ScalarOrSchedule = _DEFAULT_PROBABILITY,
    max_size_triangular: int = 8192,
    min_ndim_triangular: int = 2,
    memory_save_mode: str | None = None,
    momentum_into_precond_update: bool = True,
    preconditioner_lr: float = 0.1,
    preconditioner_init_scale: float = 1.0,
    mu_dtype: Any | None = None,
    precond_dtype: Any | None = None,
    precond_update_precision: str | None = "tensorfloat32",
    precond_grads_precision: str | None = None,
    scanned_layers: Any | Callable[[Any], Any] | None = None,
    lax_map_scanned_layers: bool = False,
    lax_map_batch_size: int = 8,
) -> GradientTransformationExtraArgs:
    r"""Precondition momentum by PSGD's Kronecker-factored preconditioner (PSGD Kron).

    Each leaf :math:`G` of shape :math:`(d_1,\dots,d_n)` has a factor :math:`Q_k` per axis
    (upper triangular, or diagonal for axes of size 1 or above ``max_size_triangular``,
    leaves of fewer than ``min_ndim_triangular`` axes, and as ``memory_save_mode`` says).
    With bias-corrected momentum :math:`\hat m_t` and the mode-:math:`k` product
    :math:`\times_k`:

    .. math::

        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        \hat m_t = \frac{m_t}{1-\beta_1^t}, \quad
        u_t = \operatorname{cap}\big(\hat m_t \times_1 Q_1^\top Q_1 \cdots
            \times_n Q_n^\top Q_n\big), \quad
        \operatorname{cap}(u) = \frac{u}{\max(1, \operatorname{RMS}(u)/1.1)}

    Before :math:`u_t`, when a counter reaches :math:`1/p_t` (deterministically, every
    :math:`\lceil 1/p_t\rceil` steps), the factors take one step of the Lie-group fit of
    :math:`P = \bigotimes_k Q_k^\top Q_k` to :math:`P\,\mathbb E[hh^\top] P = I`, on
    :math:`h = \hat m_t + \sqrt{\epsilon_{32}}\,\overline{|\hat m_t|}\, v` (:math:`g_t` for
    :math:`\hat m_t` if not ``momentum_into_precond_update``) with a Gaussian probe
    :math:`v`: with :math:`A = h \times_1 Q_1 \cdots \times_n Q_n` and
    :math:`B = v \times_1 Q_1^{-\top} \cdots \times_n Q_n^{-\top}` (triangular solves),

    .. math::

        Q_k \leftarrow Q_k - \frac{\eta_Q}{\|A_{(k)}A_{(k)}^\top + B_{(k)}B_{(k)}^\top\|}
            \operatorname{triu}\big(A_{(k)}A_{(k)}^\top - B_{(k)}B_{(k)}^\top\big)\, Q_k

    (the norm a cheap lower bound of the spectral norm; a diagonal factor takes the
    elementwise step scaled by the largest entry). About one refit in 100 first rescales
    the factors to equal largest entries (their product unchanged).
    The randomness is ``fold_in(PRNGKey(5318008), count)``, as psgd-jax's.

    **Memory** per leaf: its momentum (one ``mu_dtype`` value a parameter) plus
    :math:`\sum_k d_k^2` (triangular axes) or :math:`d_k` (diagonal) ``precond_dtype``
    floats; beyond its momentum a square matrix keeps 2 floats a parameter, a
    1024x256 one 4.25 (0.254 with ``one_diag``), a 1-D leaf 1.
    **Cost** of a step: preconditioning is :math:`O(N\sum_k d_k)` for a leaf of
    :math:`N` entries; a refresh adds :math:`O(N\sum_k d_k + \sum_k d_k^3)` (products with
    the factors, triangular solves, the Gram matrices), on a fraction :math:`p_t` of steps.

    The factors' maths runs in float32 (or ``precond_dtype`` if wider) whatever the
    params' dtype; updates keep the gradients' dtype. A zero gradient gives a zero update.

    Args:
      b1: :math:`\beta_1`, momentum decay, in [0, 1); 0 keeps no momentum. Default 0.9.
      preconditioner_update_probability: :math:`p_t`, in [0, 1], or a schedule of the
        step (default :func:`precond_update_prob_schedule`).
      max_size_triangular: axes longer than this get a diagonal factor, >= 0. Default 8192.
      min_ndim_triangular: leaves with fewer axes get diagonal factors, >= 0. Default 2.
      memory_save_mode: None (triangular wherever allowed), ``"one_diag"`` (the largest
        axis of each leaf diagonal) or ``"all_diag"`` (every factor diagonal).
      momentum_into_precond_update: fit the preconditioner to the momentum (True) or to
        the raw gradient (False). Default True.
      preconditioner_lr: step size of the factors' fit, > 0. Default 0.1.
      preconditioner_init_scale: initial :math:`\prod_k Q_k = s I`, > 0. Default 1.
      mu_dtype: dtype of the momentum; None keeps the params' dtype.
      precond_dtype: dtype the factors are stored in; None for float32.
      precond_update_precision: matmul precision of the refresh: None (JAX's default),
        ``"bfloat16"``, ``"tensorfloat32"`` (default) or ``"float32"``.
      precond_grads_precision: matmul precision of the preconditioning, the same options;
        default None.
      scanned_layers: a pytree of bools like the params (or a function of the params):
        leaves whose leading axis stacks layers, each slice with its own factors.
      lax_map_scanned_layers: map over scanned layers with ``lax.map`` (less memory)
        instead of ``vmap``. Default False.
      lax_map_batch_size: slices per ``lax.map`` iteration, >= 1. Default 8.

    References:
      Li, `Preconditioned Stochastic Gradient Descent <https://arxiv.org/abs/1512.04202>`_,
      IEEE TNNLS 2018; Li, `Black Box Lie Group Preconditioners for SGD
      <https://arxiv.org/abs/2211.04422>`_, 2022; psgd-jax 0.2.9 (E. Walsh), whose
      numbers this transform reproduces.
    """
    check.unit_interval("b1", b1, "pass a value in [0, 1) such as 0.9 (0 for no momentum)")
    if callable(preconditioner_update_probability):
        check.non_negative(
            "preconditioner_update_probability",
            preconditioner_update_probability,
            "pass a schedule of probabilities in [0, 1]",
            schedule=True,
        )
    else:
        check.interval("preconditioner_update_probability", preconditioner_update_probability, 0, 1)
    check.integer("max_size_triangular", max_size_triangular)
    check.integer("min_ndim_triangular", min_ndim_triangular)
    check.one_of("memory_save_mode", memory_save_mode, MEMORY_SAVE_MODES)
    check.boolean("momentum_into_precond_update", momentum_into_precond_update)
    check.positive("preconditioner_lr", preconditioner_lr, "pass a value > 0 such as 0.1")
    check.positive("preconditioner_init_scale", preconditioner_init_scale, "pass e.g. 1.0")
    mu_dtype = check.dtype("mu_dtype", mu_dtype)
    precond_dtype = check.dtype("precond_dtype", precond_dtype) or jnp.dtype(jnp.float32)
    check.one_of("precond_update_precision", precond_update_precision, PRECISIONS)
    check.one_of("precond_grads_precision", precond_grads_precision, PRECISIONS)
    check.optional(check.mask, "scanned_layers", scanned_layers)
    check.boolean("lax_map_scanned_layers", lax_map_scanned_layers)
    check.integer("lax_map_batch_size", lax_map_batch_size, minimum=1)
    keeps_momentum = not (isinstance(b1, (int, float)) and b1 == 0)
    schedule = preconditioner_update_probability
    schedule = schedule if callable(schedule) else None

    def scanned_flags(tree) -> tuple[bool, ...]:
        leaves, treedef = jax.tree.flatten(tree)
        if scanned_layers is None:
            return (False,) * len(leaves)
        flags = scanned_layers(tree) if callable(scanned_layers) else scanned_layers
        return tuple(bool(f) for f in treedef.flatten_up_to(flags))

    def init_leaf(leaf, scanned: bool):
        shape = leaf.shape[1:] if scanned else leaf.shape
        triangular = kp.triangular_axes(
            shape, max_size_triangular, min_ndim_triangular, memory_save_mode
        )
        factors = kp.init_factors(shape, triangular, preconditioner_init_scale, precond_dtype)
        if scanned:
            factors = tuple(jnp.broadcast_to(q, (leaf.shape[0], *q.shape)) for q in factors)
        return factors

    def init(params):
        leaves, treedef = jax.tree.flatten(params)
        flags = scanned_flags(params)
        factors = [init_leaf(p, s) for p, s in zip(leaves, flags, strict=True)]
        return ScaleByKronState(
            count=zero_count(),
            mu=jtree.zeros_like(params, dtype=mu_dtype) if keeps_momentum else None,
            preconditioners=treedef.unflatten(factors),
            update_counter=zero_count(),
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        config = ks.StepConfig(
            schedule, momentum_into_precond_update, mu_dtype, precond_dtype,
            precond_update_precision, precond_grads_precision, lax_map_scanned_layers,
            lax_map_batch_size, scanned_flags(updates),
        )  # fmt: skip
        hyper = {"b1": b1, "lr": preconditioner_lr}
        if schedule is None:
            hyper["probability"] = preconditioner_update_probability
        out, *fields = ks.step(config, hyper, updates, *state)
        return out, ScaleByKronState(*fields)

    return GradientTransformationExtraArgs(init, update)


def kron(
    learning_rate: ScalarOrSchedule = 0.001,
    b1: float = 0.9,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: Any | Callable[[Any], Any] | None = None,
    preconditioner_update_probability: ScalarOrSchedule = _DEFAULT_PROBABILITY,
    max_size_triangular: int = 8192,
    min_ndim_triangular: int = 2,
    memory_save_mode: str | None = None,
    momentum_into_precond_update: bool = True,
    preconditioner_lr: float = 0.1,
    preconditioner_init_scale: float = 1.0,
    mu_dtype: Any | None = None,
    precond_dtype: Any | None = None,
    precond_update_precision: str | None = "tensorfloat32",
    precond_grads_precision: str | None = None,
    scanned_layers: Any | Callable[[Any], Any] | None = None,
    lax_map_scanned_layers: bool = False,
    lax_map_batch_size: int = 8,
) -> GradientTransformationExtraArgs:
    r"""PSGD Kron (see :func:`scale_by_kron`), with decoupled weight decay.

    .. math::  x_{t+1} = x_t - \alpha_t\,\big(u_t^{\text{Kron}} + \lambda x_t\big)

    Names and defaults are psgd-jax's ``kron``. Memory: one momentum value a parameter
    plus :math:`d_k^2` floats per triangular axis and :math:`d_k` per diagonal one.

    Args:
      learning_rate: :math:`\alpha_t`, a number >= 0 or a schedule. Default 0.001.
      b1: momentum decay, in [0, 1). Default 0.9.
      weight_decay: :math:`\lambda`, >= 0 or a schedule. Default 0.
      weight_decay_mask: tree of booleans (or a function of the params) selecting the
        leaves to decay.
      preconditioner_update_probability: in [0, 1] or a schedule (default
        :func:`precond_update_prob_schedule`).
      max_size_triangular: axes longer than this get a diagonal factor. Default 8192.
      min_ndim_triangular: leaves with fewer axes get diagonal factors. Default 2.
      memory_save_mode: None, ``"one_diag"`` or ``"all_diag"``.
      momentum_into_precond_update: fit the preconditioner to the momentum. Default True.
      preconditioner_lr: step size of the factors' fit, > 0. Default 0.1.
      preconditioner_init_scale: initial scale of the preconditioner, > 0. Default 1.
      mu_dtype: dtype of the momentum; None keeps the params' dtype.
      precond_dtype: dtype the factors are stored in; None for float32.
      precond_update_precision: matmul precision of the refresh. Default "tensorfloat32".
      precond_grads_precision: matmul precision of the preconditioning. Default None.
      scanned_layers: pytree of bools (or a function of the params) marking stacked layers.
      lax_map_scanned_layers: use ``lax.map`` over scanned layers. Default False.
      lax_map_batch_size: slices per ``lax.map`` iteration, >= 1. Default 8.

    References:
      Li, `Preconditioned Stochastic Gradient Descent <https://arxiv.org/abs/1512.04202>`_,
      IEEE TNNLS 2018; psgd-jax 0.2.9.
    """
    check.learning_rate("learning_rate", learning_rate)
    check.optional(check.mask, "weight_decay_mask", weight_decay_mask)
    return chain(
        scale_by_kron(
            b1, preconditioner_update_probability, max_size_triangular, min_ndim_triangular,
            memory_save_mode, momentum_into_precond_update, preconditioner_lr,
            preconditioner_init_scale, mu_dtype, precond_dtype, precond_update_precision,
            precond_grads_precision, scanned_layers, lax_map_scanned_layers, lax_map_batch_size,
        ),
        add_decayed_weights(weight_decay, mask=weight_decay_mask),
        scale_by_learning_rate(learning_rate),
    )  # fmt: skip
