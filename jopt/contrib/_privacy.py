"""Differentially private SGD: clip each example's gradient, sum, add Gaussian noise."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    ScalarOrSchedule,
    identity,
)
from jopt.transforms import chain, per_example_global_norm_clip, scale_by_learning_rate, trace


class DifferentiallyPrivateAggregateState(NamedTuple):
    """State of :func:`differentially_private_aggregate`."""

    rng_key: jax.Array  # typed PRNG key for the next noise draw


def _canonical_key(name: str, key: jax.Array | int) -> jax.Array:
    check.prng_key(name, key)
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    if jnp.shape(key) == (2,):  # a legacy raw uint32 key from jax.random.PRNGKey
        return jax.random.wrap_key_data(jnp.asarray(key, jnp.uint32))
    return jax.random.key(key)


def differentially_private_aggregate(
    l2_norm_clip: float,
    noise_multiplier: float,
    key: jax.Array | int | None = None,
    *,
    seed: int | None = None,
) -> GradientTransformation:
    r"""Aggregate per-example gradients with differential privacy (DP-SGD's gradient).

    With per-example gradients :math:`g_i` (axis 0 of every leaf, batch size :math:`B`):

    .. math::  \tilde g = \frac{1}{B}\Big(\sum_i g_i \min\big(1, C/\|g_i\|\big)
               + \sigma C\, \xi\Big), \qquad \xi \sim \mathcal N(0, I)

    Args:
      l2_norm_clip: :math:`C`, the per-example norm bound, > 0.
      noise_multiplier: :math:`\sigma`, >= 0.
      key: a PRNG key or an integer seed for the noise; None uses seed 0 (the same noise
        in every run: pass your own).
      seed: an integer seed, an alternative to ``key`` (give one of them).

    References:
      Abadi et al., `Deep Learning with Differential Privacy
      <https://arxiv.org/abs/1607.00133>`_, CCS 2016.
    """
    check.positive("l2_norm_clip", l2_norm_clip, "pass the per-example norm bound, e.g. 1.0")
    check.non_negative("noise_multiplier", noise_multiplier)
    if seed is not None:
        check.integer("seed", seed)
        if key is not None:
            raise ValueError(f"seed must be None when key is given, got {seed!r}; pass one of them")
        key = seed
    key = _canonical_key("seed" if seed is not None else "key", 0 if key is None else key)
    noise_std = l2_norm_clip * noise_multiplier

    def init(params):
        del params
        return DifferentiallyPrivateAggregateState(rng_key=key)

    def update(updates, state, params=None):
        del params
        leaves, structure = jax.tree.flatten(updates)
        batch = leaves[0].shape[0]
        clipped, _ = per_example_global_norm_clip(leaves, l2_norm_clip)
        new_key, *keys = jax.random.split(state.rng_key, len(leaves) + 1)
        noised = [
            (g + noise_std * jax.random.normal(k, g.shape, g.dtype)) / batch
            for g, k in zip(clipped, keys, strict=True)
        ]
        return jax.tree.unflatten(structure, noised), DifferentiallyPrivateAggregateState(new_key)

    return GradientTransformation(init, update)


def dpsgd(
    learning_rate: ScalarOrSchedule,
    l2_norm_clip: float,
    noise_multiplier: float,
    seed: int,
    momentum: float | None = None,
    nesterov: bool = False,
) -> GradientTransformationExtraArgs:
    r"""DP-SGD: :func:`differentially_private_aggregate`, then SGD (with optional momentum).

    .. math::  \tilde g_t = \frac1B \Bigl(\sum_{i=1}^{B} \frac{g_{t,i}}{\max(1, \|g_{t,i}\|_2 / C)}
       + \mathcal N(0, \sigma^2 C^2 I)\Bigr), \qquad w_{t+1} = w_t - \eta_t\, \tilde g_t

    ``update`` takes per-example gradients (batch on axis 0 of every leaf), e.g. from
    ``jax.vmap(jax.grad(loss), in_axes=(None, 0))``.

    Args:
      learning_rate: a number >= 0 or a schedule.
      l2_norm_clip: the per-example norm bound, > 0.
      noise_multiplier: noise standard deviation relative to ``l2_norm_clip``, >= 0.
      seed: an integer seed (or a PRNG key) for the noise.
      momentum: in [0, 1], or None for plain SGD.
      nesterov: use Nesterov momentum. Default False.

    References:
      Abadi et al., `Deep Learning with Differential Privacy
      <https://arxiv.org/abs/1607.00133>`_, CCS 2016.
    """
    check.learning_rate("learning_rate", learning_rate)
    check.prng_key("seed", seed)  # passed on as the key
    check.optional(check.closed_unit_interval, "momentum", momentum)  # a trace: 1 sums
    check.boolean("nesterov", nesterov)
    return chain(
        differentially_private_aggregate(l2_norm_clip, noise_multiplier, seed),
        identity() if momentum is None else trace(decay=momentum, nesterov=nesterov),
        scale_by_learning_rate(learning_rate),
    )
