"""Shared test machinery: fixed pytrees, a deterministic loss, a runner and a tree comparator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jopt


def nested_params(dtype=jnp.float32) -> dict:
    """Dicts, lists, tuples, a scalar leaf, a matrix and an empty subtree."""
    rng = np.random.default_rng(0)

    def arr(*shape):
        return jnp.asarray(rng.normal(size=shape), dtype)

    return {
        "dense": {"w": arr(4, 3), "b": arr(3)},
        "layers": [arr(2), (arr(2, 2), arr())],
        "scale": arr(),
        "empty": {},
    }


def flat_params(dtype=jnp.float32) -> dict:
    """A single vector: the simplest tree."""
    return {"x": jnp.asarray(np.linspace(-1.5, 2.0, 6), dtype)}


PYTREES: dict[str, Callable[[], Any]] = {
    "nested": nested_params,
    "flat": flat_params,
}


def loss(params: Any) -> jax.Array:
    """A smooth, non-quadratic loss whose gradients change from step to step.

    Each leaf gets its own curvature so that per-leaf and global transforms differ.
    """
    leaves = jax.tree.leaves(params)
    total = jnp.zeros([], jnp.float32)
    for i, leaf in enumerate(leaves):
        x = leaf.astype(jnp.float32)
        total = total + jnp.sum(0.5 * (i + 1) * x**2 + jnp.sin(3.0 * x) + 0.1 * x)
    return total


# The loss gradient is not under test: one jitted function, compiled once per tree layout
# and shared by every test of the process, keeps "eager" runs about the transform alone.
_value_and_grad = jax.jit(jax.value_and_grad(loss))


def run(
    tx: Any,
    params: Any,
    steps: int = 25,
    jit: bool = False,
    extra_args: bool = False,
    apply: Callable[[Any, Any], Any] = jopt.apply_updates,
) -> tuple[Any, Any]:
    """Train ``params`` on :func:`loss` for ``steps`` steps with ``tx``; return (params, state).

    With ``jit=False`` the transform's ``update`` runs op by op (eagerly); with ``jit=True``
    update and apply run as one compiled function.
    """
    state = tx.init(params)

    def step(params, state, value, grads):
        kwargs = {"value": value, "grad": grads, "value_fn": loss} if extra_args else {}
        updates, state = tx.update(grads, state, params, **kwargs)
        return apply(params, updates), state

    if jit:
        step = jax.jit(step)
    for _ in range(steps):
        value, grads = _value_and_grad(params)
        grads = jax.tree.map(lambda g, p: g.astype(jnp.result_type(p)), grads, params)
        params, state = step(params, state, value, grads)
    return params, state


def state_layout(tree: Any) -> tuple[str, list]:
    """The structure (with NamedTuple class names) and every leaf's dtype and shape."""
    leaves, treedef = jax.tree.flatten(tree)
    return str(treedef), [(str(jnp.result_type(x)), jnp.shape(x)) for x in leaves]


def assert_trees_close(actual: Any, expected: Any, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Compare two pytrees leaf by leaf; the failure names the leaf path."""
    a_leaves, a_def = jax.tree_util.tree_flatten_with_path(actual)
    e_leaves, e_def = jax.tree_util.tree_flatten_with_path(expected)
    assert a_def == e_def, f"structures differ: {a_def} vs {e_def}"
    for (path, a), (_, e) in zip(a_leaves, e_leaves, strict=False):
        where = jax.tree_util.keystr(path)
        assert jnp.result_type(a) == jnp.result_type(e), (
            f"dtype differs at {where}: {jnp.result_type(a)} vs {jnp.result_type(e)}"
        )
        np.testing.assert_allclose(
            np.asarray(a, np.float64),
            np.asarray(e, np.float64),
            rtol=rtol,
            atol=atol,
            err_msg=f"leaf {where} differs",
        )
