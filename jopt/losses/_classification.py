"""Binary and margin classification losses: logistic, focal, hinge, perceptron."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jopt import _check as check

_FLOAT = "pass real-valued scores, e.g. logits.astype(jnp.float32)"


def sigmoid_binary_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    r"""Elementwise binary cross entropy of sigmoid probabilities (logistic loss).

    .. math::  \ell = -y \log\sigma(z) - (1 - y)\log\sigma(-z)

    computed with ``log_sigmoid`` so that large :math:`|z|` neither overflows nor
    loses precision.

    Args:
      logits: floating array of scores :math:`z`.
      labels: targets :math:`y` in [0, 1] (soft labels allowed), broadcastable with ``logits``.
    """
    check.array_dtype("logits", logits, jnp.floating, _FLOAT)
    labels = jnp.astype(labels, logits.dtype)
    return -labels * jax.nn.log_sigmoid(logits) - (1.0 - labels) * jax.nn.log_sigmoid(-logits)


def sigmoid_focal_loss(
    logits: jax.Array, labels: jax.Array, *, alpha: float | None = None, gamma: float = 2.0
) -> jax.Array:
    r"""Focal loss: the logistic loss down-weighted on well-classified examples.

    .. math::
      \ell = \alpha_t (1 - p_t)^\gamma \,\mathrm{BCE}(z, y), \quad
      p_t = y\,\sigma(z) + (1-y)(1-\sigma(z)), \quad \alpha_t = y\alpha + (1-y)(1-\alpha)

    with :math:`\log(1 - p_t)` computed by a log-sum-exp for stability.

    Args:
      logits: floating array of scores.
      labels: targets in [0, 1], same shape.
      alpha: weight of the positive class in [0, 1], or None for no weighting.
      gamma: focusing exponent, >= 0 (0 gives the logistic loss); default 2.

    References:
      Lin et al., `Focal Loss for Dense Object Detection <https://arxiv.org/abs/1708.02002>`_,
      2017.
    """
    check.array_dtype("logits", logits, jnp.floating, _FLOAT)
    check.optional(check.closed_unit_interval, "alpha", alpha, "pass a weight such as 0.25")
    check.non_negative("gamma", gamma, "pass a focusing exponent >= 0 such as 2.0")
    labels = jnp.astype(labels, logits.dtype)
    cross_entropy = sigmoid_binary_cross_entropy(logits, labels)
    log_p, log_q = jax.nn.log_sigmoid(logits), jax.nn.log_sigmoid(-logits)
    log_one_minus_pt = jax.scipy.special.logsumexp(
        jnp.stack([log_p, log_q], axis=-1), axis=-1, b=jnp.stack([1 - labels, labels], axis=-1)
    )
    loss = cross_entropy * jnp.exp(gamma * log_one_minus_pt)
    if alpha is None:
        return loss
    return (alpha * labels + (1.0 - alpha) * (1.0 - labels)) * loss


def hinge_loss(predictor_outputs: jax.Array, targets: jax.Array) -> jax.Array:
    r"""Elementwise hinge loss of a binary classifier, :math:`\max(0, 1 - y\,s)`.

    Args:
      predictor_outputs: scores :math:`s`.
      targets: labels :math:`y \in \{-1, 1\}`, broadcastable with the scores.
    """
    return jnp.maximum(0, 1 - predictor_outputs * targets)


def perceptron_loss(predictor_outputs: jax.Array, targets: jax.Array) -> jax.Array:
    r"""Elementwise perceptron loss, :math:`\max(0, -y\,s)`.

    Args:
      predictor_outputs: scores :math:`s`.
      targets: labels :math:`y \in \{-1, 1\}`, same shape as the scores.
    """
    check.same_shape("predictor_outputs", predictor_outputs, "targets", targets)
    return jnp.maximum(0, -predictor_outputs * targets)


def _dot_last(a, b):
    return jnp.vectorize(jnp.dot, signature="(n),(n)->()")(a, b)


def multiclass_hinge_loss(scores: jax.Array, labels: jax.Array) -> jax.Array:
    r"""Multiclass hinge loss (Crammer & Singer), :math:`\max_k (s_k + 1 - [k = y]) - s_y`.

    Args:
      scores: array ``[..., num_classes]``.
      labels: integer class indices ``[...]``.

    References:
      Crammer & Singer, `On the Algorithmic Implementation of Multiclass Kernel-based Vector
      Machines <https://www.jmlr.org/papers/v2/crammer01a.html>`_, 2001.
    """
    one_hot = jax.nn.one_hot(labels, scores.shape[-1])
    return jnp.max(scores + 1.0 - one_hot, axis=-1) - _dot_last(scores, one_hot)


def multiclass_perceptron_loss(scores: jax.Array, labels: jax.Array) -> jax.Array:
    r"""Multiclass perceptron loss, :math:`\max_k s_k - s_y`.

    Args:
      scores: array ``[..., num_classes]``.
      labels: integer class indices ``[...]``.
    """
    one_hot = jax.nn.one_hot(labels, scores.shape[-1])
    return jnp.max(scores, axis=-1) - _dot_last(scores, one_hot)
