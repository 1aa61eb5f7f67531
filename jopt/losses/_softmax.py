"""Softmax cross entropies (one-hot or soft labels, integer labels, masked), PolyLoss and
label smoothing."""

from __future__ import annotations

import operator

import jax
import jax.numpy as jnp

from jopt import _check as check

_FLOAT = "pass real-valued logits, e.g. logits.astype(jnp.float32)"


def _expand_where(where, logits, axis):
    # A mask over the examples only (one rank short) applies to every class.
    if where is not None and jnp.ndim(where) != jnp.ndim(logits):
        return jnp.expand_dims(where, axis)
    return where


def softmax_cross_entropy(
    logits: jax.Array,
    labels: jax.Array,
    axis: int | tuple[int, ...] | None = -1,
    where: jax.Array | None = None,
) -> jax.Array:
    r"""Cross entropy between label distributions and the softmax of the logits.

    .. math::  \ell = -\sum_k y_k \log \operatorname{softmax}(z)_k

    Args:
      logits: floating array of unnormalized log probabilities.
      labels: probabilities of the same shape (one-hot or soft).
      axis: the class axis or axes; default -1.
      where: boolean mask of the classes that count (entries outside are ignored by
        the softmax and the sum), same shape as ``logits`` or without the class axis.

    Returns:
      The loss, with ``axis`` reduced.
    """
    check.array_dtype("logits", logits, jnp.floating, _FLOAT)
    where = _expand_where(where, logits, axis)
    log_probs = jax.nn.log_softmax(logits, axis, where)
    return -(labels * log_probs).sum(axis, where=where)


def _canonical_axis(axis, ndim):
    axis = operator.index(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis must be in [{-ndim}, {ndim}) for logits of rank {ndim}, got {axis}")
    return axis % ndim


def softmax_cross_entropy_with_integer_labels(
    logits: jax.Array,
    labels: jax.Array,
    axis: int | tuple[int, ...] = -1,
    where: jax.Array | None = None,
) -> jax.Array:
    r"""Softmax cross entropy with integer class labels: :math:`\log\sum_k e^{z_k} - z_y`.

    Only the label's logit is subtracted from the normalizer, which is cheaper
    and more precise than indexing a full log-softmax.

    Args:
      logits: floating array of unnormalized log probabilities.
      labels: integer class indices, shaped like ``logits`` without ``axis``.
      axis: the class axis, or a tuple of axes flattened into one class axis; default -1.
      where: boolean mask of the classes that count; examples with no class left give 0.
    """
    check.array_dtype("logits", logits, jnp.floating, _FLOAT)
    check.array_dtype("labels", labels, jnp.integer, "pass class indices, e.g. labels.astype(int)")
    where = _expand_where(where, logits, axis)
    if isinstance(axis, int):
        axis = _canonical_axis(axis, logits.ndim)
    elif isinstance(axis, tuple):
        # Move the class axes last and flatten them into one.
        class_axes = tuple(_canonical_axis(a, logits.ndim) for a in axis)
        batch_axes = tuple(a for a in range(logits.ndim) if a not in class_axes)
        axis = len(batch_axes)
        logits = logits.transpose(batch_axes + class_axes)
        logits = logits.reshape(logits.shape[:axis] + (-1,))
        if where is not None:
            where = where.transpose(batch_axes + class_axes)
            where = where.reshape(where.shape[:axis] + (-1,))
    else:
        raise TypeError(f"axis must be an int or a tuple of ints, got {axis!r}")
    label_logits = jnp.take_along_axis(logits, jnp.expand_dims(labels, axis), axis=axis)
    out = jax.nn.logsumexp(logits, axis=axis, where=where) - label_logits.take(0, axis=axis)
    if where is not None:
        out = jnp.where(jnp.any(where, axis), out, 0.0)
    return out


@jax.custom_jvp
def _weighted_log_softmax(x, weights):
    """``weights * log_softmax(x)``, exactly 0 where the weight is 0 (even if the log is -inf)."""
    log_softmax = jax.nn.log_softmax(x, axis=-1)
    return jnp.where(weights != 0.0, weights * log_softmax, jnp.zeros_like(log_softmax))


@_weighted_log_softmax.defjvp
def _weighted_log_softmax_jvp(primals, tangents):
    # Written by hand so that a -inf logit with zero weight gives a zero, not a NaN,
    # derivative.
    (x, weights), (x_dot, weights_dot) = primals, tangents
    log_softmax = jax.nn.log_softmax(x, axis=-1)
    out = jnp.where(weights != 0.0, weights * log_softmax, jnp.zeros_like(log_softmax))
    softmax_dot = jnp.sum(x_dot * jax.nn.softmax(x, axis=-1), axis=-1, keepdims=True)
    return out, weights * x_dot - weights * softmax_dot + weights_dot * log_softmax


def safe_softmax_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    r""":func:`softmax_cross_entropy` over the last axis that stays finite when logits are -inf.

    Terms whose label is 0 contribute exactly 0 to the loss and its gradient, so
    masking classes with ``-inf`` logits is safe.

    Args:
      logits: floating array ``[..., num_classes]``, possibly with -inf entries.
      labels: probabilities of the same shape.
    """
    check.array_dtype("logits", logits, jnp.floating, _FLOAT)
    return -jnp.sum(_weighted_log_softmax(logits, labels), axis=-1)


def poly_loss_cross_entropy(
    logits: jax.Array,
    labels: jax.Array,
    *,
    epsilon: float = 2.0,
    axis: int | tuple[int, ...] | None = -1,
    where: jax.Array | None = None,
) -> jax.Array:
    r"""PolyLoss (Poly-1): cross entropy plus :math:`\epsilon (1 - p_t)`.

    .. math::  \ell = \mathrm{CE}(z, y) + \epsilon \sum_k y_k (1 - \operatorname{softmax}(z)_k)

    Args:
      logits: floating array of unnormalized log probabilities.
      labels: floating probabilities of the same shape.
      epsilon: weight of the polynomial term (any real; -1 to 1 is typical); default 2.
      axis: the class axis or axes; default -1.
      where: boolean mask of the classes that count.

    References:
      Leng et al., `PolyLoss: A Polynomial Expansion Perspective of Classification Loss
      Functions <https://arxiv.org/abs/2204.12511>`_, 2022.
    """
    check.array_dtype("logits", logits, jnp.floating, _FLOAT)
    check.array_dtype("labels", labels, jnp.floating, "pass probabilities as floats")
    check.number("epsilon", epsilon)
    p = jax.nn.softmax(logits, axis=axis, where=where)
    one_minus_pt = jnp.sum(labels * (1 - p), axis=axis, where=where)
    return softmax_cross_entropy(logits, labels, axis=axis, where=where) + epsilon * one_minus_pt


def smooth_labels(
    labels: jax.Array,
    alpha: float,
    *,
    axis: int | tuple[int, ...] | None = -1,
    where: jax.Array | None = None,
) -> jax.Array:
    r"""Label smoothing: :math:`(1 - \alpha)\,y + \alpha / K` over :math:`K` classes.

    Args:
      labels: floating one-hot (or soft) labels.
      alpha: the smoothing, in [0, 1] (required).
      axis: the class axis or axes; default -1.
      where: boolean mask of the valid classes; :math:`K` counts only those.

    References:
      Szegedy et al., `Rethinking the Inception Architecture for Computer Vision
      <https://arxiv.org/abs/1512.00567>`_, 2015.
    """
    check.array_dtype("labels", labels, jnp.floating, "pass one-hot labels as floats")
    check.closed_unit_interval("alpha", alpha, "pass a smoothing in [0, 1] such as 0.1")
    if where is None:
        num_classes = jnp.size(labels, axis)
    else:
        num_classes = jnp.sum(where, axis, keepdims=True)
    return (1.0 - alpha) * labels + alpha / num_classes
