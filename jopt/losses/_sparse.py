"""Sparsemax losses and Fenchel-Young losses built from any max operator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp


def sparsemax_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
    r"""Binary sparsemax loss, elementwise: :math:`\operatorname{sparseplus}(\pm z)`.

    The binary case of the sparsemax loss; its gradient is exactly zero once an
    example is classified with margin 1.

    .. math::  \ell = \operatorname{sparseplus}(s),\quad s = -z \text{ if } y = 1
      \text{ else } z, \qquad \operatorname{sparseplus}(s) = \begin{cases}0 & s \le -1\\
      \tfrac14 (s+1)^2 & |s| < 1 \\ s & s \ge 1\end{cases}

    Args:
      logits: scores.
      labels: binary labels in {0, 1}, broadcastable with ``logits``.

    References:
      Martins & Astudillo, `From Softmax to Sparsemax <https://arxiv.org/abs/1602.02068>`_,
      2016.
    """
    return jax.nn.sparse_plus(jnp.where(labels, -logits, logits))


@jax.custom_jvp
def _simplex_projection(values):
    """Euclidean projection of a vector onto the probability simplex (sort-based)."""
    n = values.shape[0]
    ordered = jnp.sort(values)[::-1]
    cumsum = jnp.cumsum(ordered)
    ranks = jnp.arange(n) + 1
    support = jnp.count_nonzero(1 / ranks + (ordered - cumsum / ranks) > 0)
    return jax.nn.relu(1 / support + (values - cumsum[support - 1] / support))


@_simplex_projection.defjvp
def _simplex_projection_jvp(primals, tangents):
    # The Jacobian is the centering projection on the support (Martins & Astudillo, 2016).
    (values,), (values_dot,) = primals, tangents
    out = _simplex_projection(values)
    support = out > 0
    mean_on_support = jnp.dot(support, values_dot) / jnp.count_nonzero(support)
    return out, support * values_dot - mean_on_support * support


def _one_sparsemax_loss(scores, label):
    proba = _simplex_projection(scores)
    # Fenchel conjugate of the Gini negentropy, shifted by the label's score.
    shifted = (scores - scores[label]).at[label].set(0.0)
    return jnp.dot(proba, jnp.where(proba, shifted, 0.0)) + 0.5 * (1.0 - jnp.dot(proba, proba))


def multiclass_sparsemax_loss(scores: jax.Array, labels: jax.Array) -> jax.Array:
    r"""Multiclass sparsemax loss: the Fenchel-Young loss of the Gini negentropy.

    .. math::  \ell = \langle p, s - s_y\rangle + \tfrac12(1 - \|p\|^2),\quad
      p = \operatorname{sparsemax}(s)

    Args:
      scores: array ``[batch, num_classes]``.
      labels: integer class indices ``[batch]``.

    References:
      Martins & Astudillo, `From Softmax to Sparsemax <https://arxiv.org/abs/1602.02068>`_,
      2016.
    """
    return jax.vmap(_one_sparsemax_loss)(scores, labels)


def make_fenchel_young_loss(
    max_fun: Callable[..., jax.Array],
) -> Callable[..., jax.Array]:
    r"""The Fenchel-Young loss of a max operator: :math:`\Omega^*(s) - \langle y, s\rangle`.

    ``max_fun(scores, *args, **kwargs)`` maps a vector to a scalar (e.g.
    ``jax.nn.logsumexp`` gives the softmax cross entropy, up to the targets' entropy).
    The returned ``loss(scores, targets, *args, **kwargs)`` applies it over the last
    axis, batched over the others.

    Args:
      max_fun: the convex conjugate :math:`\Omega^*` of a regularizer, on one vector.

    References:
      Blondel et al., `Learning with Fenchel-Young Losses <https://arxiv.org/abs/1901.02324>`_,
      2020.
    """
    if not callable(max_fun):
        raise TypeError(
            f"max_fun must be a function of a score vector, got {max_fun!r}; "
            "pass e.g. jax.nn.logsumexp"
        )
    vdot_last = jnp.vectorize(jnp.vdot, signature="(n),(n)->()")
    max_last = jnp.vectorize(max_fun, signature="(n)->()")

    def fenchel_young_loss(scores: jax.Array, targets: jax.Array, *args: Any, **kwargs: Any):
        return max_last(scores, *args, **kwargs) - vdot_last(targets, scores)

    return fenchel_young_loss
