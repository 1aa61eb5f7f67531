"""check_transform: the contract every gradient transformation should meet."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jopt.testing._trees import _close, _same_layout, random_like
from jopt.transforms import chain


def _count_traces(tx: Any, extra_args: dict) -> tuple[Callable, list]:
    traces: list = []

    def step(params, state, grads):
        traces.append(None)
        return tx.update(grads, state, params, **extra_args)

    return jax.jit(step), traces


def _check_pure_and_abstract(tx: Any, params: Any) -> None:
    state = tx.init(params)
    _close("init is not pure: two calls differ", tx.init(params), state, 0.0, 0.0)
    try:
        abstract = jax.eval_shape(tx.init, params)
    except Exception as err:
        raise AssertionError(f"jax.eval_shape(tx.init, params) fails: {err!r}") from err
    _same_layout("eval_shape(init) differs from init", abstract, state)
    _close("jit(init) differs from init", jax.jit(tx.init)(params), state, 0.0, 0.0)


def _check_updates(tx: Any, params: Any, grads: Any, steps: int, extra: dict, rtol, atol) -> None:
    """jit equals eager, state layout stable, one trace, dtypes of the params, pure update."""
    jitted, traces = _count_traces(tx, extra)
    eager_state = jit_state = state0 = tx.init(params)
    for t in range(steps):
        eager_u, eager_state = tx.update(grads, eager_state, params, **extra)
        jit_u, new_state = jitted(params, jit_state, grads)
        _same_layout(f"step {t}: the state is unstable (it would retrace)", new_state, state0)
        jit_state = new_state
        _close(f"step {t}: jit differs from eager", jit_u, eager_u, rtol, atol)
        for path, (u, p) in _paired_leaves(jit_u, params):
            if jnp.result_type(u) != jnp.result_type(p):
                raise AssertionError(
                    f"step {t}: update dtype differs from the param's at {path}: "
                    f"{jnp.result_type(u)} vs {jnp.result_type(p)}"
                )
    if len(traces) != 1:
        raise AssertionError(
            f"update retraced: {len(traces)} traces for {steps} jitted steps; a state leaf "
            "changed its shape, dtype or weak type (jax.config jax_explain_cache_misses says which)"
        )
    u1, s1 = tx.update(grads, state0, params, **extra)
    u2, s2 = tx.update(grads, state0, params, **extra)
    _close("update is not pure: two calls on the same state differ", u2, u1, 0.0, 0.0)


def _paired_leaves(a: Any, b: Any):
    leaves, _ = jax.tree_util.tree_flatten_with_path(a)
    for (path, x), y in zip(leaves, jax.tree.leaves(b), strict=True):
        yield jax.tree_util.keystr(path), (x, y)


def _check_vmap(tx: Any, params: Any, grads: Any, extra: dict, rtol, atol) -> None:
    """A batch of two independent problems under vmap equals each run alone."""
    batch = jax.tree.map(lambda x: jnp.stack([x, 2 * x]), params)
    gbatch = jax.tree.map(lambda x: jnp.stack([x, -x]), grads)

    def one(p, g):
        return tx.update(g, tx.init(p), p, **extra)[0]

    try:
        got = jax.vmap(one)(batch, gbatch)
    except Exception as err:
        raise AssertionError(f"vmap over a batch of params/grads fails: {err!r}") from err
    for i in range(2):
        member = functools.partial(lambda i, x: x[i], i)
        alone = one(*jax.tree.map(member, (batch, gbatch)))
        _close(f"vmap: batch member {i} differs", jax.tree.map(member, got), alone, rtol, atol)


def _check_chains(tx: Any, params: Any, grads: Any, extra: dict, chains, rtol, atol) -> None:
    alone = tx.update(grads, tx.init(params), params, **extra)[0]
    for combine in (chain, *chains):
        name = f"{getattr(combine, '__module__', '')}.{getattr(combine, '__name__', combine)}"
        if extra and combine is not chain:
            continue  # optax.chain drops extra arguments: nothing a transform can do about it
        inner = combine(tx)
        got = inner.update(grads, inner.init(params), params, **extra)[0]
        _close(f"inside {name.lstrip('.')}", got, alone, rtol, atol)


def check_transform(
    tx: Any,
    params: Any,
    *,
    grads: Any = None,
    steps: int = 2,
    seed: int = 0,
    vmap: bool = True,
    chains: tuple = (),
    rtol: float = 1e-5,
    atol: float = 1e-6,
    **extra_args: Any,
) -> None:
    """Assert that ``tx`` meets the gradient-transformation contract on ``params``.

    Checked, each failure an ``AssertionError`` naming the property (and the step and leaf):
    ``init`` and ``update`` are pure; ``jax.eval_shape(tx.init, params)`` and ``jit(init)`` give
    ``init``'s layout; jitted ``update`` equals eager for ``steps`` steps; the state keeps its
    structure, shapes and dtypes (so a jitted step traces once); every update leaf has its
    param's dtype (pass bfloat16 params to check that bf16 stays bf16); ``vmap`` over a batch
    of params and gradients gives each member's result; the transform gives the same updates
    inside ``jopt.chain`` and inside every chain function of ``chains`` (pass
    ``chains=(optax.chain,)`` to check optax interop; jopt itself never imports optax).

    Args:
      tx: the transform (any object with ``init``/``update``).
      params: parameter pytree.
      grads: the gradients (a tree like ``params``); random normal from ``seed`` if None.
      steps: jitted and eager steps compared.
      seed: seed of the generated gradients.
      vmap: check ``vmap``; turn off for transforms that cannot batch (host callbacks).
      chains: more chain functions to compose ``tx`` with, e.g. ``(optax.chain,)``; skipped
        when ``extra_args`` are given (optax's chain drops them).
      rtol, atol: tolerances of the jit-versus-eager and composition comparisons.
      **extra_args: passed to every ``update`` (e.g. ``value=...``).

    Example:
      >>> import jax.numpy as jnp, jopt, jopt.testing
      >>> jopt.testing.check_transform(jopt.scale_by_adam(), {"w": jnp.ones(3)})
    """
    grads = random_like(params, seed) if grads is None else grads
    _check_pure_and_abstract(tx, params)
    _check_updates(tx, params, grads, steps, extra_args, rtol, atol)
    if vmap:
        _check_vmap(tx, params, grads, extra_args, rtol, atol)
    _check_chains(tx, params, grads, extra_args, chains, rtol, atol)


# Hypothesis strategies: hypothesis is imported when a strategy is built.
