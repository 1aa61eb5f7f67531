"""Step-by-step runs of line-search optimizers on deterministic objectives (shared by the
line-search and L-BFGS tests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jopt


def rosenbrock(params: Any) -> jax.Array:
    """Rosenbrock's function of all the leaves of ``params`` flattened: minimum 0 at ones."""
    x = jnp.concatenate([jnp.ravel(leaf) for leaf in jax.tree.leaves(params)])
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


ROSENBROCK_2D = jnp.asarray([-1.2, 1.0])
ROSENBROCK_NESTED = {
    "head": jnp.asarray(-1.2, jnp.float32),
    "tail": [jnp.asarray([1.0, -0.5]), (jnp.zeros(1),)],
}


def trajectory(
    tx: Any,
    fn: Callable[..., jax.Array],
    params: Any,
    steps: int,
    *,
    jit: bool = True,
    reuse: bool = True,
    apply: Callable[[Any, Any], Any] = jopt.apply_updates,
    **fn_kwargs: Any,
) -> list[Any]:
    """The params after each of ``steps`` updates (the first entry is the start).

    ``reuse`` takes the value and gradient from the state through
    :func:`jopt.value_and_grad_from_state`, as a user of a deterministic objective does.
    """
    value_and_grad = (
        jopt.value_and_grad_from_state(fn)
        if reuse
        else (lambda p, state, **kw: jax.value_and_grad(fn)(p, **kw))
    )

    def step(params, state):
        value, grad = value_and_grad(params, state=state, **fn_kwargs)
        updates, state = tx.update(
            grad, state, params, value=value, grad=grad, value_fn=fn, **fn_kwargs
        )
        return apply(params, updates), state

    step = jax.jit(step) if jit else step
    state = tx.init(params)
    out = [params]
    for _ in range(steps):
        params, state = step(params, state)
        out.append(params)
    # jopt's state keeps its types, so one compilation serves every step (optax's
    # weakly typed info scalars retrace once).
    if jit and type(tx).__module__.startswith("jopt"):
        assert step._cache_size() == 1, "the step retraced: the state changed type"
    return out


def assert_same_trajectory(ours: list[Any], theirs: list[Any], rtol=1e-6, atol=1e-7) -> None:
    """Every step's params agree, leaf by leaf; the failure names the step."""
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=f"step {i}")
