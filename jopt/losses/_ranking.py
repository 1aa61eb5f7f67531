"""Listwise ranking loss: softmax cross entropy over the items of each list."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jopt import _check as check


def _reduce(values, where, reduce_fn):
    output = reduce_fn(values, where=where) if reduce_fn is not None else values
    if reduce_fn is jnp.mean:
        # A mean over no valid list is NaN; report 0 instead, unless the losses
        # themselves hold a NaN, which must stay visible.
        valid_input = jnp.logical_not(jnp.any(jnp.isnan(values)))
        output = jnp.where(jnp.isnan(output) & valid_input, 0.0, output)
    if reduce_fn is None and where is not None:
        # Unreduced losses of masked lists are 0, so that summing them later
        # equals reduce_fn=jnp.sum.
        output = jnp.where(where, output, 0.0)
    return output


def ranking_softmax_loss(
    logits: jax.Array,
    labels: jax.Array,
    *,
    where: jax.Array | None = None,
    weights: jax.Array | None = None,
    reduce_fn: Callable[..., jax.Array] | None = jnp.mean,
) -> jax.Array:
    r"""Listwise softmax loss: :math:`-\sum_i y_i \log\operatorname{softmax}(s)_i` per list.

    Args:
      logits: floating scores ``[..., list_size]``.
      labels: relevance of each item, same shape (converted to the logits' dtype).
      where: boolean mask of the valid items; lists with none are ignored.
      weights: per-item weights multiplying the labels, or None.
      reduce_fn: reduction over the lists (called as ``reduce_fn(x, where=...)``), or
        None for one loss per list; default ``jnp.mean``.

    References:
      Cao et al., `Learning to Rank: From Pairwise Approach to Listwise Approach
      <https://doi.org/10.1145/1273496.1273513>`_, 2007.
    """
    check.array_dtype("logits", logits, jnp.floating, "pass floating scores")
    labels = labels.astype(logits.dtype)
    if where is not None:
        labels = jnp.where(where, labels, jnp.zeros_like(labels))
        logits = jnp.where(where, logits, -jnp.ones_like(logits) * jnp.inf)
    if weights is not None:
        labels = labels * weights
    loss = -jnp.sum(labels * jax.nn.log_softmax(logits, axis=-1), axis=-1, where=where)
    if where is not None:
        where = jnp.any(where, axis=-1)
    return _reduce(loss, where, reduce_fn)
