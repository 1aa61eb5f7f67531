"""Metric-learning losses on embeddings: NT-Xent (contrastive) and triplet margin."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt.losses._regression import cosine_similarity

_FLOAT = "pass floating embeddings, e.g. x.astype(jnp.float32)"


def ntxent(embeddings: jax.Array, labels: jax.Array, temperature: float = 0.07) -> jax.Array:
    r"""Normalized temperature-scaled cross entropy (SimCLR's contrastive loss).

    With :math:`s_{ij}` the cosine similarity of embeddings :math:`i, j` divided by
    the temperature :math:`\tau`, and :math:`P` the pairs :math:`i \ne j` sharing a label,

    .. math::
      \ell = -\frac{1}{|P|}\sum_{(i,j)\in P}
        \log\frac{e^{s_{ij}}}{e^{s_{ij}} + \sum_{k:\,y_k \ne y_i} e^{s_{ik}}}

    Args:
      embeddings: floating array ``[batch, dim]``.
      labels: integer array ``[batch]``; equal labels mark positive pairs.
      temperature: :math:`\tau > 0`; default 0.07.

    References:
      Chen et al., `A Simple Framework for Contrastive Learning of Visual Representations
      <https://arxiv.org/abs/2002.05709>`_, 2020.
    """
    check.array_dtype("embeddings", embeddings, jnp.floating, _FLOAT)
    check.positive("temperature", temperature, "pass a temperature > 0 such as 0.07")
    if labels.shape[0] != embeddings.shape[0]:
        raise ValueError(
            f"labels has {labels.shape[0]} rows but embeddings has {embeddings.shape[0]}; "
            "pass one label per embedding"
        )
    eps = jnp.finfo(embeddings.dtype).eps
    sims = cosine_similarity(embeddings[None, :, :], embeddings[:, None, :], epsilon=eps)
    sims = sims / temperature
    same = labels[:, None] == labels[None, :]
    negatives = same ^ 1
    positives = jnp.bool_(same - jnp.eye(same.shape[0]))  # a sample is not its own positive
    neg_sims = jnp.where(negatives == 1, sims, -jnp.inf)
    pos_sims = jnp.where(positives == 1, sims, -jnp.inf)
    # Shift by the row maximum for stability; the shift cancels in the ratio.
    shift = jax.lax.stop_gradient(
        jnp.max(jnp.concatenate((neg_sims, pos_sims), axis=-1), axis=1, keepdims=True)
    )
    pos_shifted = pos_sims - shift
    denominator = jnp.sum(jnp.exp(neg_sims - shift), axis=1, keepdims=True) + jnp.exp(pos_shifted)
    log_ratio = pos_shifted - jnp.log(denominator)
    return -jnp.where(positives == 1, log_ratio, 0.0).sum() / positives.sum()


def triplet_margin_loss(
    anchors: jax.Array,
    positives: jax.Array,
    negatives: jax.Array,
    axis: int = -1,
    norm_degree: float = 2,
    margin: float = 1.0,
    eps: float = 1e-6,
) -> jax.Array:
    r"""Triplet margin loss: the positive must be closer than the negative by ``margin``.

    .. math::
      \ell = \max(d(a, p) - d(a, n) + m, 0),\qquad
      d(x, y) = \Big(\sum (x - y)^q + \epsilon\Big)^{1/q}

    Args:
      anchors: floating array ``[..., dim]``.
      positives: floating array like ``anchors``.
      negatives: floating array like ``anchors``.
      axis: the embedding axis; default -1.
      norm_degree: :math:`q`, the degree of the distance, > 0; default 2.
      margin: :math:`m`, finite; default 1.
      eps: :math:`\epsilon` inside the root (keeps its gradient finite at 0), >= 0;
        default 1e-6.

    References:
      Schroff et al., `FaceNet <https://arxiv.org/abs/1503.03832>`_, 2015.
    """
    for name, x in (("anchors", anchors), ("positives", positives), ("negatives", negatives)):
        check.array_dtype(name, x, jnp.floating, _FLOAT)
    check.positive("norm_degree", norm_degree, "pass the degree of the norm, such as 2")
    check.number("margin", margin)
    check.non_negative("eps", eps, "pass a small value such as 1e-6")

    def distance(other):
        return jnp.power(jnp.power(anchors - other, norm_degree).sum(axis) + eps, 1 / norm_degree)

    return jnp.maximum(distance(positives) - distance(negatives) + margin, 0)
