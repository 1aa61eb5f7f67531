"""Kullback-Leibler divergences between distributions given as (log) probabilities."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp

from jopt import _check as check

_FLOAT = "pass floating (log) probabilities"


def kl_divergence(
    log_predictions: jax.Array,
    targets: jax.Array,
    axis: int | tuple[int, ...] | None = -1,
    where: jax.Array | None = None,
) -> jax.Array:
    r"""KL divergence of the predictions from the targets, :math:`\sum_k y_k(\log y_k - \log p_k)`.

    Terms with :math:`y_k = 0` count as 0.

    Args:
      log_predictions: floating log probabilities :math:`\log p`.
      targets: floating probabilities :math:`y`, broadcastable with ``log_predictions``.
      axis: the axis or axes summed over; default -1.
      where: boolean mask of the entries that count.

    References:
      Kullback & Leibler, `On Information and Sufficiency
      <https://doi.org/10.1214/aoms/1177729694>`_, 1951.
    """
    check.array_dtype("log_predictions", log_predictions, jnp.floating, _FLOAT)
    check.array_dtype("targets", targets, jnp.floating, _FLOAT)
    loss = targets * (jnp.where(targets == 0, 0, jnp.log(targets)) - log_predictions)
    return jnp.sum(loss, axis=axis, where=where)


def kl_divergence_with_log_targets(
    log_predictions: jax.Array,
    log_targets: jax.Array,
    axis: int | tuple[int, ...] | None = -1,
    where: jax.Array | None = None,
) -> jax.Array:
    r"""KL divergence with log-probability targets, :math:`\sum_k e^{l_k}(l_k - \log p_k)`.

    Args:
      log_predictions: floating log probabilities :math:`\log p`.
      log_targets: floating log probabilities :math:`l` of the targets.
      axis: the axis or axes summed over; default -1.
      where: boolean mask of the entries that count.
    """
    check.array_dtype("log_predictions", log_predictions, jnp.floating, _FLOAT)
    check.array_dtype("log_targets", log_targets, jnp.floating, _FLOAT)
    loss = jnp.exp(log_targets) * (log_targets - log_predictions)
    return jnp.sum(loss, axis=axis, where=where)


def generalized_kl_divergence(
    log_predictions: jax.Array,
    targets: jax.Array,
    axis: int | tuple[int, ...] | None = -1,
    where: jax.Array | None = None,
) -> jax.Array:
    r"""KL divergence extended to unnormalized measures, convex in both arguments.

    .. math::  \sum_k y_k(\log y_k - \log p_k) + \sum_k (p_k - y_k)

    Args:
      log_predictions: floating log of the (possibly unnormalized) predictions.
      targets: floating non-negative targets.
      axis: the axis or axes summed over; default -1.
      where: boolean mask of the entries that count.
    """
    divergence = kl_divergence(log_predictions, targets, axis=axis, where=where)
    return divergence + jnp.sum(jnp.exp(log_predictions) - targets, axis=axis, where=where)


def convex_kl_divergence(
    log_predictions: jax.Array,
    targets: jax.Array,
    axis: int | tuple[int, ...] | None = -1,
    where: jax.Array | None = None,
) -> jax.Array:
    """Deprecated (as in optax): the former name of :func:`generalized_kl_divergence`.

    Warns with a ``DeprecationWarning`` that names the replacement, as optax does.

    Args:
      log_predictions: floating log of the (possibly unnormalized) predictions.
      targets: floating non-negative targets.
      axis: the axis or axes summed over; default -1.
      where: boolean mask of the entries that count.
    """
    warnings.warn(
        "The function convex_kl_divergence is deprecated. "
        "Please use generalized_kl_divergence instead.",
        DeprecationWarning,
        stacklevel=2,
    )
    return generalized_kl_divergence(log_predictions, targets, axis=axis, where=where)
