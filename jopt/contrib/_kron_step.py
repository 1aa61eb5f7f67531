"""One PSGD Kron step over a whole tree: momentum, the occasional refit, preconditioning.

The step is one function of (static configuration, numeric hyperparameters, arrays),
jitted once per configuration and tree: eager calls reuse the compiled program instead
of recompiling the refit's ``lax.cond`` branches at every call, and inside a caller's
``jit`` it is inlined. A configuration that cannot be hashed (an unhashable schedule)
runs unjitted, with the same numbers.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jopt import tree as jtree
from jopt.contrib import _kron_precond as kp
from jopt.schedules._hyper import value_at

# psgd-jax's fixed key, folded with the step count: the same random draws, no key in the state.
KEY_SEED = 5318008
_BALANCE_PROBABILITY = 0.01  # the factors are rebalanced on about one refit in 100
_RMS_CAP = 1.1  # a well-fitted preconditioner gives updates of RMS about 1


class StepConfig(NamedTuple):
    """What fixes the compiled program of a step (hashable, static under ``jit``)."""

    probability_schedule: Callable[[Any], Any] | None  # None: the probability is numeric
    momentum_into_precond_update: bool
    mu_dtype: Any
    precond_dtype: Any
    update_precision: str | None
    grads_precision: str | None
    lax_map: bool
    lax_map_batch_size: int
    scanned: tuple[bool, ...]  # per leaf: its leading axis stacks layers


def _precision(name: str | None):
    return contextlib.nullcontext() if name is None else jax.default_matmul_precision(name)


def _rms_capped(update: jax.Array) -> jax.Array:
    rms = jnp.sqrt(jnp.mean(jnp.square(update)))
    return update / jnp.maximum(1.0, rms / _RMS_CAP)


def over_layers(config: StepConfig, scanned: bool, fn, *args):
    """``fn(*args)``, or mapped over the leading axis of a scanned layer's arrays."""
    if not scanned:
        return fn(*args)
    if config.lax_map:
        size = config.lax_map_batch_size if config.lax_map_batch_size > 1 else None
        return jax.lax.map(lambda xs: fn(*xs), args, batch_size=size)
    return jax.vmap(fn)(*args)


def _refit(config: StepConfig, lr, key, factors, fit_inputs):
    """One fit step of every leaf's factors (and, now and then, a rebalancing first)."""
    scanned = config.scanned
    empty = [h.size == 0 for h in fit_inputs]  # nothing to fit (and no max of nothing)

    def balance(fs):
        return [
            f if e else over_layers(config, s, kp.balance, f)
            for f, s, e in zip(fs, scanned, empty, strict=True)
        ]

    with _precision(config.update_precision):
        key, subkey = jax.random.split(key)
        factors = jax.lax.cond(
            jax.random.uniform(subkey) < _BALANCE_PROBABILITY, balance, lambda fs: fs, factors
        )
        key, subkey = jax.random.split(key)
        keys = jax.random.split(subkey, len(fit_inputs))
        probes = [
            jax.random.normal(k, h.shape, h.dtype) for k, h in zip(keys, fit_inputs, strict=True)
        ]
        damping = jnp.sqrt(jnp.finfo(jnp.float32).eps)
        fit_inputs = [
            h + damping.astype(h.dtype) * jnp.mean(jnp.abs(h)) * v
            for h, v in zip(fit_inputs, probes, strict=True)
        ]
        fit = functools.partial(kp.update_factors, lr=lr)
        return [
            f if e else over_layers(config, s, fit, f, h, over_layers(config, s, kp.whiten, f, v))
            for f, h, v, s, e in zip(factors, fit_inputs, probes, scanned, empty, strict=True)
        ]


def _step(config: StepConfig, hyper: dict, updates, count, mu, preconditioners, counter):
    """(updates, new count, mu, preconditioners, counter) after one step."""
    work_dtype = jnp.promote_types(config.precond_dtype, jnp.float32)
    new_count = jtree.safe_increment(count)
    key = jax.random.fold_in(jax.random.PRNGKey(KEY_SEED), count)
    probability = hyper.get("probability")
    if config.probability_schedule is not None:
        probability = value_at(config.probability_schedule, new_count)
    momentum = updates
    if mu is not None:
        mu = jtree.update_moment(updates, mu, hyper["b1"], 1)
        momentum = jtree.bias_correction(mu, hyper["b1"], new_count)
    grads, treedef = jax.tree.flatten(updates)
    work = [m.astype(work_dtype) for m in treedef.flatten_up_to(momentum)]
    fit_inputs = work
    if not config.momentum_into_precond_update:
        fit_inputs = [g.astype(work_dtype) for g in grads]
    factors = [
        tuple(q.astype(work_dtype) for q in f) for f in treedef.flatten_up_to(preconditioners)
    ]
    counter = jtree.safe_increment(counter)
    due = counter >= 1 / jnp.asarray(probability)  # p = 0: never (1/0 = inf)
    counter = jnp.where(due, 0, counter)
    key, subkey = jax.random.split(key)
    factors = jax.lax.cond(
        due,
        functools.partial(_refit, config, hyper["lr"]),
        lambda k, fs, hs: fs,
        subkey, factors, fit_inputs,
    )  # fmt: skip
    with _precision(config.grads_precision):
        out = [
            _rms_capped(over_layers(config, s, kp.precondition, f, m)).astype(g.dtype)
            for f, m, g, s in zip(factors, work, grads, config.scanned, strict=True)
        ]
    stored = [tuple(q.astype(config.precond_dtype) for q in f) for f in factors]
    mu = jtree.cast(mu, config.mu_dtype) if mu is not None else None
    return treedef.unflatten(out), new_count, mu, treedef.unflatten(stored), counter


_jitted_step = jax.jit(_step, static_argnums=0)


def step(config: StepConfig, hyper: dict, *arrays):
    """:func:`_step`, jitted when ``config`` can be hashed."""
    try:
        hash(config)
    except TypeError:
        return _step(config, hyper, *arrays)
    return _jitted_step(config, hyper, *arrays)
