"""Distributed Shampoo: Kronecker-factored full-matrix AdaGrad, grafted onto a diagonal method."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree as jtree
from jopt.base import GradientTransformation, ScalarOrSchedule, Updates
from jopt.contrib import _shampoo_blocks as blocks
from jopt.schedules._hyper import zero_count
from jopt.transforms import chain, scale_by_learning_rate

GraftType = Literal[
    "none", "sgd", "adagrad", "rmsprop", "rmsprop_normalized", "sqrt_n", "adagrad_normalized"
]
_GRAFT_TYPES = (
    "none", "sgd", "adagrad", "rmsprop", "rmsprop_normalized", "sqrt_n", "adagrad_normalized"
)  # fmt: skip
_DIAGONAL_GRAFTS = ("adagrad", "rmsprop", "rmsprop_normalized", "adagrad_normalized")
_TINY = 1e-25  # precondition-opt's _EPSILON: guards the norm ratios


class ScaleByShampooState(NamedTuple):
    """State of :func:`scale_by_shampoo`."""

    count: jax.Array  # int32 scalar, steps seen (saturates)
    diagonal_statistics: Updates  # the graft's sum/EMA of g^2, like params (() for sgd/none)
    statistics: tuple[jax.Array, ...]  # float32 (d, d) per block and axis, leaf by leaf
    preconditioners: tuple[jax.Array, ...]  # float32 (d, d) inverse p-th roots, same order
    diagonal_momentum: Updates  # momentum of the grafted (diagonal) update, like params
    momentum: Updates  # momentum of the Shampoo update, like params


def _graft_type(value: Any) -> str:
    """The graft's name: a string, or precondition-opt's ``GraftingType`` member."""
    name = value.name.lower() if hasattr(value, "name") else value
    check.one_of("graft_type", name, _GRAFT_TYPES)
    return name


def _graft(kind, g, diagonal, beta2, diagonal_epsilon, clip_norm):
    """The diagonal update whose norm Shampoo's update takes, and the new g^2 statistic."""
    if kind in ("sgd", "none"):
        return g, diagonal
    if kind == "sqrt_n":
        return jnp.sign(g), diagonal
    if kind.endswith("_normalized"):
        g = g / (jnp.linalg.norm(g) + _TINY)
    if kind.startswith("adagrad"):
        diagonal = diagonal + jnp.square(g)
    else:
        decay = jnp.where(beta2 == 1.0, 1.0, 1.0 - beta2)
        diagonal = beta2 * diagonal + decay * jnp.square(g)
    update = g / (jnp.sqrt(diagonal) + diagonal_epsilon)
    if clip_norm is not None and kind.startswith("rmsprop"):
        scaled_norm = jnp.linalg.norm(update) / jnp.sqrt(float(update.size))
        update = update / jnp.maximum(1.0, scaled_norm / clip_norm)
    return update, diagonal


def _leaf_update(g, param, layout, preconditioners, diagonal, diagonal_momentum, momentum, run, h):
    """One leaf's step: the grafted Shampoo direction with momentum, and its new moments."""
    graft, diagonal = _graft(
        h["graft_type"], g, diagonal, h["beta2"], h["diagonal_epsilon"], h["clip"]
    )
    direction = graft if layout is None else blocks.preconditioned(g, layout, preconditioners)
    if h["graft_type"] != "none":
        direction = direction * (jnp.linalg.norm(graft) / (jnp.linalg.norm(direction) + _TINY))
    if h["weight_decay"] is not None:
        direction = direction + h["weight_decay"] * param
        graft = graft + h["weight_decay"] * param
    w = (1.0 - h["beta1"]) if h["moving_average_for_momentum"] else 1.0
    momentum = h["beta1"] * momentum + w * direction
    diagonal_momentum = h["beta1"] * diagonal_momentum + w * graft
    out = jnp.where(run, momentum, diagonal_momentum)
    if h["nesterov"]:
        out = w * jnp.where(run, direction, graft) + h["beta1"] * out
    return out, diagonal, diagonal_momentum, momentum


def scale_by_shampoo(
    block_size: int = 128,
    beta1: float = 0.9,
    beta2: float = 0.999,
    diagonal_epsilon: float = 1e-10,
    matrix_epsilon: float = 1e-6,
    weight_decay: float = 0.0,
    start_preconditioning_step: int = 5,
    preconditioning_compute_steps: int = 1,
    statistics_compute_steps: int = 1,
    best_effort_shape_interpretation: bool = True,
    graft_type: GraftType = "sgd",
    nesterov: bool = True,
    exponent_override: int = 0,
    inverse_failure_threshold: float = 0.1,
    moving_average_for_momentum: bool = False,
    skip_preconditioning_dim_size_gt: int = 4096,
    clip_by_scaled_gradient_norm: float | None = None,
    relative_matrix_epsilon: bool = True,
    merge_small_dims_block_size: int = 4096,
    skip_preconditioning_rank_lt: int = 1,
    eigh: bool = False,
) -> GradientTransformation:
    r"""Precondition updates by Distributed Shampoo, grafted onto a diagonal method (the
    descent direction, before the learning rate: see :func:`shampoo`).

    Each leaf (small axes merged, long axes cut into ``block_size`` blocks) keeps, per block
    :math:`G` of rank :math:`k` and per axis :math:`i`, a statistic and its inverse root:

    .. math::

        L_i \leftarrow \beta_2 L_i + (1-\beta_2)\, G_{(i)} G_{(i)}^\top, \qquad
        P_i = (L_i + \epsilon\,\lambda_{\max}(L_i) I)^{-1/(2k)}, \qquad
        S = G \times_1 P_1 \cdots \times_k P_k

    :math:`L_i` starts at ``matrix_epsilon`` :math:`I` and :math:`P_i` at :math:`I`. The
    statistics are updated every ``statistics_compute_steps``; the roots (coupled Newton,
    or ``eigh``, in float32, batched over blocks of one size) every
    ``preconditioning_compute_steps`` under ``lax.cond``, and a root whose error is NaN or
    at least ``inverse_failure_threshold`` keeps the previous one. The graft :math:`D`
    (SGD: :math:`g`; AdaGrad / RMSProp: :math:`g / (\sqrt{v} + \epsilon_d)`, of
    :math:`g/\lVert g\rVert` for the ``_normalized`` kinds) sets the norm, layer by layer:

    .. math::

        U = S\,\frac{\lVert D\rVert}{\lVert S\rVert} + \lambda x, \quad
        m \leftarrow \beta_1 m + U, \quad \hat m \leftarrow \beta_1 \hat m + D + \lambda x,
        \quad u = \beta_1 m + U \ \text{(Nesterov) or } m

    Before step ``start_preconditioning_step`` (counted from 0) the update is the graft's
    (:math:`\hat m`, :math:`D`) instead. Leaves of rank below
    ``skip_preconditioning_rank_lt`` (scalars) or with an axis longer than
    ``skip_preconditioning_dim_size_gt`` use the graft alone. This follows
    precondition-opt's ``distributed_shampoo`` (same names, defaults and numbers), without
    its pjit / pmap sharding, quantized states, low-rank compression, frequent directions and
    LOBPCG options; ``decoupled_learning_rate`` is always True (:func:`shampoo` scales last)
    and weight decay is always coupled (chain ``add_decayed_weights`` for the other kind).

    Memory: two floats per parameter (the momenta) in the params' dtype, a third for a
    diagonal graft, plus :math:`2 \sum_i d_i^2` float32s per block of sides :math:`d_i`
    (statistics and roots; a (784, 256) + (256, 10) MLP with ``block_size=128`` keeps 9.7
    floats per parameter). Cost of a step: the statistics and the preconditioning take
    :math:`O(n \sum_i d_i)` for a block of :math:`n` entries; every
    ``preconditioning_compute_steps`` each statistic adds a root of :math:`O(D^3)`, where
    :math:`D` is the tree's largest statistic (all are padded to it and batched, one
    compiled root per exponent, as precondition-opt does): up to 100 coupled Newton steps
    of a few matrix products, or one ``eigh``. Under ``vmap`` (a population sweep) the
    ``lax.cond`` becomes a select and the roots run every step.

    Args:
      block_size: longest side of a block, an integer >= 0 (0: no blocking). Default 128.
      beta1: momentum :math:`\beta_1`, in [0, 1]. Default 0.9.
      beta2: decay of the statistics :math:`\beta_2`, in (0, 1] (1: sums). Default 0.999.
      diagonal_epsilon: :math:`\epsilon_d` of a diagonal graft, >= 0. Default 1e-10.
      matrix_epsilon: ridge :math:`\epsilon` (times :math:`\lambda_{\max}` when
        ``relative_matrix_epsilon``), >= 0. Default 1e-6.
      weight_decay: coupled weight decay :math:`\lambda`, >= 0. Default 0.
      start_preconditioning_step: first step (from 0) using Shampoo, >= 0. Default 5.
      preconditioning_compute_steps: period of the roots, >= 1. Default 1.
      statistics_compute_steps: period of the statistics, >= 1. Default 1.
      best_effort_shape_interpretation: merge small axes. Default True.
      graft_type: one of ``"none"``, ``"sgd"``, ``"adagrad"``, ``"rmsprop"``,
        ``"rmsprop_normalized"``, ``"sqrt_n"``, ``"adagrad_normalized"`` (or
        precondition-opt's ``GraftingType`` member). Default ``"sgd"``.
      nesterov: Nesterov momentum. Default True.
      exponent_override: use :math:`P = L^{-1/\text{this}}` for every statistic when > 0.
      inverse_failure_threshold: error at which a new root is rejected, > 0. Default 0.1.
      moving_average_for_momentum: weight the new term by :math:`1-\beta_1`. Default False.
      skip_preconditioning_dim_size_gt: leaves with a longer axis use the graft alone.
        Default 4096.
      clip_by_scaled_gradient_norm: clip an RMSProp graft's RMS at this, > 0, or None.
      relative_matrix_epsilon: scale the ridge by :math:`\lambda_{\max}`. Default True.
      merge_small_dims_block_size: bound of the merged axes' product, >= 1. Default 4096.
      skip_preconditioning_rank_lt: leaves of lower rank use the graft alone. Default 1.
      eigh: roots by ``eigh`` instead of coupled Newton iterations. Default False.

    References:
      Gupta, Koren & Singer, `Shampoo: Preconditioned Stochastic Tensor Optimization
      <https://arxiv.org/abs/1802.09568>`_, ICML 2018; Anil et al., `Scalable Second Order
      Optimization for Deep Learning <https://arxiv.org/abs/2002.09018>`_, 2020.
    """
    check.integer("block_size", block_size)
    check.closed_unit_interval("beta1", beta1)
    check.positive("beta2", beta2, "pass a value in (0, 1] such as 0.999")
    check.interval("beta2", beta2, 0.0, 1.0, "pass a value in (0, 1] such as 0.999")
    check.non_negative("diagonal_epsilon", diagonal_epsilon)
    check.non_negative("matrix_epsilon", matrix_epsilon)
    check.non_negative("weight_decay", weight_decay)
    check.integer("start_preconditioning_step", start_preconditioning_step)
    check.integer("preconditioning_compute_steps", preconditioning_compute_steps, minimum=1)
    check.integer("statistics_compute_steps", statistics_compute_steps, minimum=1)
    check.boolean("best_effort_shape_interpretation", best_effort_shape_interpretation)
    graft_type = _graft_type(graft_type)
    for name, value in (
        ("nesterov", nesterov),
        ("moving_average_for_momentum", moving_average_for_momentum),
        ("relative_matrix_epsilon", relative_matrix_epsilon),
        ("eigh", eigh),
    ):
        check.boolean(name, value)
    check.integer("exponent_override", exponent_override)
    check.positive("inverse_failure_threshold", inverse_failure_threshold)
    check.integer("skip_preconditioning_dim_size_gt", skip_preconditioning_dim_size_gt)
    check.optional(check.positive, "clip_by_scaled_gradient_norm", clip_by_scaled_gradient_norm)
    check.integer("merge_small_dims_block_size", merge_small_dims_block_size, minimum=1)
    check.integer("skip_preconditioning_rank_lt", skip_preconditioning_rank_lt)
    merge_bound = merge_small_dims_block_size if best_effort_shape_interpretation else None
    decays = not (isinstance(weight_decay, (int, float)) and weight_decay == 0)

    def layouts_of(leaves):
        return blocks.layouts(
            leaves, block_size, merge_bound, skip_preconditioning_dim_size_gt,
            skip_preconditioning_rank_lt,
        )  # fmt: skip

    def init(params):
        leaves = jax.tree.leaves(params)
        sizes = [d for lay in layouts_of(leaves) if lay is not None for d in lay.statistic_sizes()]
        eye = lambda d: jnp.eye(d, dtype=jnp.float32)  # noqa: E731
        return ScaleByShampooState(
            count=zero_count(),
            diagonal_statistics=jtree.zeros_like(params) if graft_type in _DIAGONAL_GRAFTS else (),
            statistics=tuple(matrix_epsilon * eye(d) for d in sizes),
            preconditioners=tuple(eye(d) for d in sizes),
            diagonal_momentum=jtree.zeros_like(params),
            momentum=jtree.zeros_like(params),
        )

    def exponents(layouts):
        return [
            exponent_override or lay.exponent()
            for lay in layouts
            if lay is not None
            for _ in lay.statistic_sizes()
        ]

    def update(updates, state, params=None):
        if decays:
            check.params_given("scale_by_shampoo", params)
        grads, treedef = jax.tree.flatten(updates)
        layouts = layouts_of(grads)
        step = state.count
        g32 = [jnp.asarray(g, jnp.float32) for g in grads]
        statistics = jax.lax.cond(
            step % statistics_compute_steps == 0,
            lambda: blocks.new_statistics(g32, layouts, state.statistics, beta2),
            lambda: state.statistics,
        )
        preconditioners = jax.lax.cond(
            step % preconditioning_compute_steps == 0,
            lambda: blocks.all_roots(
                statistics, exponents(layouts), state.preconditioners, matrix_epsilon,
                inverse_failure_threshold, eigh, relative_matrix_epsilon,
            ),
            lambda: state.preconditioners,
        )  # fmt: skip
        h = dict(
            graft_type=graft_type,
            beta1=beta1,
            beta2=beta2,
            clip=clip_by_scaled_gradient_norm,
            diagonal_epsilon=diagonal_epsilon,
            weight_decay=weight_decay if decays else None,
            moving_average_for_momentum=moving_average_for_momentum,
            nesterov=nesterov,
        )
        outs = _apply(g32, state, params, treedef, layouts, preconditioners, step, h)
        out, diagonal, diagonal_momentum, momentum = outs
        new_state = ScaleByShampooState(
            jtree.safe_increment(state.count),
            diagonal if graft_type in _DIAGONAL_GRAFTS else (),
            statistics,
            preconditioners,
            jtree.cast_like(diagonal_momentum, state.diagonal_momentum),
            jtree.cast_like(momentum, state.momentum),
        )
        return jtree.cast_like(out, updates), new_state

    def _apply(g32, state, params, treedef, layouts, preconditioners, step, h):
        run = step >= start_preconditioning_step
        flat = lambda tree: treedef.flatten_up_to(tree)  # noqa: E731
        diagonals = flat(state.diagonal_statistics) if graft_type in _DIAGONAL_GRAFTS else None
        params_flat = flat(params) if h["weight_decay"] is not None else [None] * len(g32)
        remaining = iter(preconditioners)
        results = []
        for i, (g, layout) in enumerate(zip(g32, layouts, strict=True)):
            diagonal = None if diagonals is None else jnp.asarray(diagonals[i], jnp.float32)
            param = None if params_flat[i] is None else jnp.asarray(params_flat[i], jnp.float32)
            results.append(
                _leaf_update(
                    g, param, layout, remaining, diagonal,
                    jnp.asarray(flat(state.diagonal_momentum)[i], jnp.float32),
                    jnp.asarray(flat(state.momentum)[i], jnp.float32), run, h,
                )
            )  # fmt: skip
        columns = list(zip(*results, strict=True)) if results else [(), (), (), ()]
        return [jax.tree.unflatten(treedef, list(c)) for c in columns]

    return GradientTransformation(init, update)


def shampoo(
    learning_rate: ScalarOrSchedule,
    block_size: int = 128,
    beta1: float = 0.9,
    beta2: float = 0.999,
    diagonal_epsilon: float = 1e-10,
    matrix_epsilon: float = 1e-6,
    weight_decay: float = 0.0,
    start_preconditioning_step: int = 5,
    preconditioning_compute_steps: int = 1,
    statistics_compute_steps: int = 1,
    best_effort_shape_interpretation: bool = True,
    graft_type: GraftType = "sgd",
    nesterov: bool = True,
    exponent_override: int = 0,
    inverse_failure_threshold: float = 0.1,
    moving_average_for_momentum: bool = False,
    skip_preconditioning_dim_size_gt: int = 4096,
    clip_by_scaled_gradient_norm: float | None = None,
    relative_matrix_epsilon: bool = True,
    merge_small_dims_block_size: int = 4096,
    skip_preconditioning_rank_lt: int = 1,
    eigh: bool = False,
) -> GradientTransformation:
    r"""Distributed Shampoo (see :func:`scale_by_shampoo`), then the learning rate.

    .. math::  x_{t+1} = x_t - \alpha_t\, u_t^{\text{Shampoo}}

    Equals precondition-opt's ``distributed_shampoo(learning_rate, block_size, ...)`` with
    the same arguments (its default ``decoupled_learning_rate=True``); ``block_size`` has a
    default here (128, the value its docstring suggests).

    Args:
      learning_rate: :math:`\alpha_t`, a number >= 0 or a schedule of the step (from 0).
      block_size: longest side of a block, >= 0 (0: no blocking). Default 128.
      beta1: momentum, in [0, 1]. Default 0.9.
      beta2: decay of the statistics, in (0, 1]. Default 0.999.
      diagonal_epsilon: epsilon of a diagonal graft, >= 0. Default 1e-10.
      matrix_epsilon: ridge of the roots, >= 0. Default 1e-6.
      weight_decay: coupled weight decay, >= 0. Default 0.
      start_preconditioning_step: first step using Shampoo. Default 5.
      preconditioning_compute_steps: period of the roots, >= 1. Default 1.
      statistics_compute_steps: period of the statistics, >= 1. Default 1.
      best_effort_shape_interpretation: merge small axes. Default True.
      graft_type: the diagonal method setting the norm. Default ``"sgd"``.
      nesterov: Nesterov momentum. Default True.
      exponent_override: the root's order for every statistic when > 0.
      inverse_failure_threshold: error at which a new root is rejected. Default 0.1.
      moving_average_for_momentum: weight the new term by :math:`1-\beta_1`.
      skip_preconditioning_dim_size_gt: leaves with a longer axis use the graft alone.
      clip_by_scaled_gradient_norm: clip an RMSProp graft's RMS, > 0, or None.
      relative_matrix_epsilon: scale the ridge by the largest eigenvalue. Default True.
      merge_small_dims_block_size: bound of the merged axes' product. Default 4096.
      skip_preconditioning_rank_lt: leaves of lower rank use the graft alone. Default 1.
      eigh: roots by ``eigh`` instead of coupled Newton iterations. Default False.

    References:
      Anil et al., `Scalable Second Order Optimization for Deep Learning
      <https://arxiv.org/abs/2002.09018>`_, 2020.
    """
    check.learning_rate("learning_rate", learning_rate)
    return chain(
        scale_by_shampoo(
            block_size, beta1, beta2, diagonal_epsilon, matrix_epsilon, weight_decay,
            start_preconditioning_step, preconditioning_compute_steps, statistics_compute_steps,
            best_effort_shape_interpretation, graft_type, nesterov, exponent_override,
            inverse_failure_threshold, moving_average_for_momentum,
            skip_preconditioning_dim_size_gt, clip_by_scaled_gradient_norm,
            relative_matrix_epsilon, merge_small_dims_block_size, skip_preconditioning_rank_lt,
            eigh,
        ),
        scale_by_learning_rate(learning_rate),
    )  # fmt: skip


__all__ = ["ScaleByShampooState", "scale_by_shampoo", "shampoo"]
