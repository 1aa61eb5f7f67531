"""Gradient clipping: element-wise, by global norm, per block, unit-wise (AGC), per example.

Complex updates are clipped by their modulus.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree
from jopt._flat._capability import refusing_empty_init
from jopt._flat._leaf_rows import map_leaf_rows, row_rms
from jopt._flat._tree import FlatTree
from jopt.base import ArrayTree, EmptyState, GradientTransformation, init_empty_state

# The clipping transforms are stateless; optax names their (empty) states.
ClipState = EmptyState
ClipByGlobalNormState = EmptyState
AdaptiveGradClipState = EmptyState


def _threshold(name: str, value, allow_zero: bool = False) -> None:
    """A clipping threshold: > 0 (or >= 0), or +inf meaning "never clip"."""
    if not callable(value) and not isinstance(value, jax.core.Tracer):
        try:
            if float(value) == math.inf:
                return
        except (TypeError, ValueError):
            pass  # not a scalar: let check.number explain
    if allow_zero:
        check.non_negative(name, value, "pass a value >= 0 such as 1.0")
    else:
        check.positive(name, value, "pass a value > 0 such as 1.0")


def clip(max_delta: float | jax.Array) -> GradientTransformation:
    r"""Clip every element to :math:`[-\delta, \delta]`: :math:`u = \min(\max(g, -\delta), \delta)`.

    Args:
      max_delta: :math:`\delta`, > 0.

    References:
      Mikolov, `Statistical Language Models Based on Neural Networks
      <https://www.fit.vut.cz/study/phd-thesis-file/283/283.pdf>`_, PhD thesis, 2012
      (element-wise gradient clipping).
    """
    _threshold("max_delta", max_delta)

    def update(updates, state, params=None):
        del params
        return tree.clip(updates, -max_delta, max_delta), state

    return GradientTransformation(init_empty_state, update)


def clip_by_block_rms(threshold: float | jax.Array) -> GradientTransformation:
    r"""Rescale each leaf whose root mean square exceeds ``threshold``.

    .. math::  u_i = g_i / \max\bigl(1, \operatorname{rms}(g_i) / \tau\bigr)

    Args:
      threshold: :math:`\tau`, the largest RMS of a leaf, > 0.

    References:
      Shazeer & Stern, `Adafactor: Adaptive Learning Rates with Sublinear Memory Cost
      <https://arxiv.org/abs/1804.04235>`_, 2018 (update clipping by block RMS).
    """
    _threshold("threshold", threshold)

    def clip_leaf(g, rms=lambda g: jnp.sqrt(jnp.mean(tree.abs_sq(g)))):
        return g / jnp.maximum(1.0, rms(g) / threshold)

    def update(updates, state, params=None):
        del params
        if isinstance(updates, FlatTree):  # one block of equal-size leaves at a time
            return map_leaf_rows(lambda g: clip_leaf(g, row_rms), updates), state
        return jax.tree.map(clip_leaf, updates), state

    return GradientTransformation(init_empty_state, update)


def clip_by_global_norm(max_norm: float | jax.Array) -> GradientTransformation:
    r"""Rescale all updates together when their global norm exceeds ``max_norm``.

    .. math::  u = \begin{cases} g & \|g\|_2 < c \\ c\, g / \|g\|_2 & \text{otherwise}\end{cases}

    Args:
      max_norm: :math:`c`, the largest global L2 norm, > 0.

    References:
      Pascanu et al., `On the difficulty of training Recurrent Neural Networks
      <https://arxiv.org/abs/1211.5063>`_, 2012.
    """
    _threshold("max_norm", max_norm)

    def update(updates, state, params=None):
        del params
        norm = tree.l2_norm(updates)
        keep = jnp.squeeze(norm < max_norm)
        # select (not a rescale by min(1, c/norm)) so that unclipped updates are
        # returned bit for bit, and as optax does, for identical gradients through it.
        updates = jax.tree.map(
            lambda g: jax.lax.select(keep, g, (g / norm.astype(g.dtype)) * max_norm), updates
        )
        return updates, state

    return GradientTransformation(init_empty_state, update)


def _check_batch_dim(grads: ArrayTree, name: str) -> None:
    leaves = jax.tree.leaves(grads)
    if not leaves or any(
        jnp.ndim(g) < 1 or jnp.shape(g)[0] != jnp.shape(leaves[0])[0] for g in leaves
    ):
        raise ValueError(
            f"{name} expects every leaf of grads to have the same batch dimension on axis 0, "
            f"got shapes {jax.tree.map(jnp.shape, grads)}; pass per-example gradients, "
            "e.g. from jax.vmap(jax.grad(loss), in_axes=(None, 0))"
        )


def per_example_global_norm_clip(
    grads: ArrayTree, l2_norm_clip: float | jax.Array
) -> tuple[ArrayTree, jax.Array]:
    r"""Clip each example's gradient to global norm ``l2_norm_clip``, then sum over examples.

    .. math::  \sum_i g_i \min\bigl(1, C / \|g_i\|_2\bigr)

    Args:
      grads: a pytree whose leaves have the batch on axis 0.
      l2_norm_clip: :math:`C`, >= 0 (0 zeroes everything; inf never clips).

    Returns:
      The sum of the clipped per-example gradients, and how many examples were clipped.

    References:
      Abadi et al., `Deep Learning with Differential Privacy
      <https://arxiv.org/abs/1607.00133>`_, 2016.
    """
    _check_batch_dim(grads, "per_example_global_norm_clip")
    _threshold("l2_norm_clip", l2_norm_clip, allow_zero=True)
    norms = jax.vmap(tree.l2_norm)(grads)
    # 0/0 (a zero gradient under a zero clip) gives nan: such an example needs no scaling.
    multipliers = jnp.nan_to_num(jnp.minimum(l2_norm_clip / norms, 1.0), nan=1.0)
    clipped = jax.tree.map(lambda g: jnp.tensordot(multipliers, g, axes=1), grads)
    return clipped, jnp.sum(multipliers < 1.0)


def per_example_layer_norm_clip(
    grads: ArrayTree, global_l2_norm_clip: float | jax.Array, uniform: bool = True
) -> tuple[ArrayTree, ArrayTree]:
    r"""Clip each example's gradient layer by layer (each leaf is a layer), then sum.

    Leaf :math:`k` of :math:`K` is clipped to :math:`C/\sqrt{K}` (``uniform``) or
    :math:`C\sqrt{D_k/D}` (its share of the :math:`D` parameters) with
    :func:`per_example_global_norm_clip`.

    Args:
      grads: a pytree whose leaves have the batch on axis 0.
      global_l2_norm_clip: :math:`C`, >= 0.
      uniform: equal clip norms for all layers, else proportional to their size.

    Returns:
      The summed clipped gradients, and per leaf the number of examples clipped.

    References:
      McMahan et al., `Learning Differentially Private Recurrent Language Models
      <https://arxiv.org/abs/1710.06963>`_, 2018.
    """
    _check_batch_dim(grads, "per_example_layer_norm_clip")
    _threshold("global_l2_norm_clip", global_l2_norm_clip, allow_zero=True)
    check.boolean("uniform", uniform)
    leaves = jax.tree.leaves(grads)
    if uniform:
        clip_norms = jax.tree.map(lambda _: global_l2_norm_clip * (1.0 / len(leaves)) ** 0.5, grads)
    else:
        total = sum(g[0].size for g in leaves)
        clip_norms = jax.tree.map(lambda g: global_l2_norm_clip * (g[0].size / total) ** 0.5, grads)
    pairs = jax.tree.map(per_example_global_norm_clip, grads, clip_norms)
    return jax.tree.transpose(jax.tree.structure(grads), jax.tree.structure((0, 0)), pairs)


def unitwise_norm(x: jax.Array, axis: int | tuple[int, ...] | None = None) -> jax.Array:
    """L2 norm of each unit of ``x``, broadcast back to ``x``'s shape.

    With ``axis=None`` the units follow layer conventions: vectors and scalars as a
    whole; rank 2 and 3 (linear, multi-head linear) over axis 0; rank 4 (HWIO conv)
    over axes (0, 1, 2); rank 5 (DHWIO conv) over axes (0, 1, 2, 3).

    Args:
      x: an array.
      axis: the axes to reduce; None infers them from the rank as above.
    """
    x = jnp.asarray(x)
    if axis is None:
        if jnp.squeeze(x).ndim <= 1:
            axis = None
        elif x.ndim in (2, 3):
            axis = 0
        elif x.ndim in (4, 5):
            axis = tuple(range(x.ndim - 1))
        else:
            raise ValueError(
                f"unitwise_norm infers units for ranks 1 to 5, got shape {x.shape}; "
                "pass axis= to name the axes to reduce"
            )
    squared = jnp.sum(tree.abs_sq(x), axis=axis, keepdims=True)
    return jnp.broadcast_to(jnp.sqrt(squared), x.shape)


def unitwise_clip(
    g_norm: jax.Array, max_norm: jax.Array, grad: jax.Array, div_eps: float = 1e-6
) -> jax.Array:
    r"""Rescale ``grad`` where ``g_norm >= max_norm``: :math:`g\, c / \max(\|g\|, \epsilon)`.

    Args:
      g_norm: unit-wise norms of ``grad`` (same shape).
      max_norm: unit-wise limits (same shape).
      grad: the gradient.
      div_eps: floor of the divisor, guards against a division by zero.
    """
    shapes = {jnp.shape(g_norm), jnp.shape(max_norm), jnp.shape(grad)}
    if len(shapes) != 1:
        raise ValueError(
            "unitwise_clip needs g_norm, max_norm and grad of one shape, got "
            f"{jnp.shape(g_norm)}, {jnp.shape(max_norm)} and {jnp.shape(grad)}; "
            "compute g_norm with jopt.unitwise_norm(grad)"
        )
    clipped = grad * (max_norm / jnp.maximum(g_norm, div_eps))
    return jnp.where(g_norm < max_norm, grad, clipped)


def adaptive_grad_clip(
    clipping: float | jax.Array,
    eps: float | jax.Array = 1e-3,
    axis: int | tuple[int, ...] | None = None,
) -> GradientTransformation:
    r"""Adaptive gradient clipping (AGC): limit each unit's update to a fraction of its weight.

    .. math::
      u = \begin{cases} g & \|g\|_u < \lambda \max(\|w\|_u, \epsilon) \\
        \lambda \max(\|w\|_u, \epsilon)\, g / \|g\|_u & \text{otherwise}\end{cases}

    with :math:`\|\cdot\|_u` the :func:`unitwise_norm`.

    Args:
      clipping: :math:`\lambda`, the largest ratio of update norm to weight norm, > 0.
      eps: :math:`\epsilon`, floor of the weight norm so zero-initialized weights move, >= 0.
      axis: the unit axes (see :func:`unitwise_norm`); None infers them.

    References:
      Brock et al., `High-Performance Large-Scale Image Recognition Without
      Normalization <https://arxiv.org/abs/2102.06171>`_, 2021.
    """
    _threshold("clipping", clipping)
    check.non_negative("eps", eps, "pass a small value such as 1e-3")

    def update(updates, state, params=None):
        if params is None:
            raise ValueError(
                "adaptive_grad_clip needs the params: call tx.update(g, state, params)"
            )
        g_norm = jax.tree.map(lambda g: unitwise_norm(g, axis), updates)
        max_norm = jax.tree.map(
            lambda p: clipping * jnp.maximum(unitwise_norm(p, axis), eps), params
        )
        return jax.tree.map(unitwise_clip, g_norm, max_norm, updates), state

    return GradientTransformation(refusing_empty_init("adaptive_grad_clip"), update)
