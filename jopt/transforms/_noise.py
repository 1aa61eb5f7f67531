r"""Annealed Gaussian gradient noise."""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jopt import _check as check
from jopt import tree
from jopt._flat._capability import refuse_flat
from jopt.base import GradientTransformation
from jopt.schedules._hyper import zero_count


class AddNoiseState(NamedTuple):
    """State of :func:`add_noise`."""

    count: jax.Array  # int32 scalar, number of updates seen (saturates)
    rng_key: jax.Array  # typed PRNG key scalar, split once per update


def _resolve_key(key: Any, seed: Any, owner: str) -> Any:
    """Check ``key`` (an int seed or a key) or the deprecated ``seed``; return the one to use.

    The key itself is made by :func:`_typed_key` in ``init``, as optax does, so that it is
    created where ``init`` runs (under a mesh, or traced by ``jax.jit``).
    """
    if seed is not None:
        warnings.warn(
            f"{owner}'s seed is deprecated; pass key=jax.random.key({seed!r}) or key={seed!r}",
            DeprecationWarning,
            stacklevel=3,
        )
        if key is not None:
            raise ValueError(f"pass only one of key and seed to {owner}, got both; keep key")
        key = seed
    if key is None:
        # optax's default: the same noise in every run unless a key is given.
        key = 0
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    if isinstance(key, bool) or not (
        isinstance(key, (int, np.integer))
        or (hasattr(key, "dtype") and np.issubdtype(key.dtype, np.integer))
    ):
        raise TypeError(
            f"key must be an int seed or a jax.random.key, got {key!r}; "
            "pass e.g. key=0 or key=jax.random.key(0)"
        )
    if np.shape(key) not in ((), (2,)):
        raise TypeError(f"key must be a scalar seed or a single key, got shape {np.shape(key)}")
    return key


def _typed_key(key: Any) -> jax.Array:
    """The typed PRNG key for a key :func:`_resolve_key` accepted."""
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    if np.shape(key) == (2,):  # a legacy raw uint32 key from jax.random.PRNGKey
        return jax.random.wrap_key_data(jnp.asarray(key, jnp.uint32))
    return jax.random.key(key)


def _normal_like(key: jax.Array, updates: Any) -> Any:
    """Standard normal noise shaped, typed and sharded like each leaf; one subkey per leaf."""
    treedef = jax.tree.structure(updates)
    keys = treedef.unflatten(list(jax.random.split(key, treedef.num_leaves)))
    return jax.tree.map(
        lambda g, k: jax.random.normal(k, g.shape, g.dtype, out_sharding=jax.typeof(g).sharding),
        updates,
        keys,
    )


def add_noise(
    eta: float | jax.Array,
    gamma: float | jax.Array,
    key: jax.Array | int | None = None,
    *,
    seed: int | None = None,
) -> GradientTransformation:
    r"""Add Gaussian noise whose variance decays with the step: :math:`u_t = g_t + \sigma_t z_t`.

    .. math::  \sigma_t = \sqrt{\eta / t^{\gamma}}, \qquad z_t \sim \mathcal{N}(0, I)

    The key in the state is split once per step, then once per leaf, exactly as
    optax does, so the same key gives optax's noise.

    Args:
      eta: :math:`\eta`, the base variance, >= 0.
      gamma: :math:`\gamma`, the annealing exponent, >= 0 (0.55 in the paper).
      key: an int seed or a ``jax.random.key`` (None means seed 0).
      seed: deprecated spelling of ``key``.

    References:
      Neelakantan et al., `Adding Gradient Noise Improves Learning for Very Deep Networks
      <https://arxiv.org/abs/1511.06807>`_, 2015.
    """
    check.non_negative("eta", eta, "pass a variance >= 0 such as 0.01")
    check.non_negative("gamma", gamma, "pass an exponent >= 0 such as 0.55")
    key = _resolve_key(key, seed, "add_noise")

    def init(params):
        refuse_flat("add_noise", params)
        del params
        return AddNoiseState(count=zero_count(), rng_key=_typed_key(key))

    def update(updates, state, params=None):
        del params
        count = tree.safe_increment(state.count)
        std = jnp.sqrt(eta / count**gamma)
        rng_key, sample_key = jax.random.split(state.rng_key)
        noise = _normal_like(sample_key, updates)
        updates = jax.tree.map(lambda g, z: (g + std * z).astype(g.dtype), updates, noise)
        return updates, AddNoiseState(count=count, rng_key=rng_key)

    return GradientTransformation(init, update)
