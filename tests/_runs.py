"""What tests share beyond :mod:`jopt.testing`: a one-vector tree and a training run on
:func:`jopt.testing.bumpy_loss` (the comparisons, the nested tree and the loss are
:mod:`jopt.testing`'s)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jopt
from jopt.testing import bumpy_loss as loss

__all__ = ["flat_params", "run"]


def flat_params(dtype=jnp.float32) -> dict:
    """A single vector: the simplest tree."""
    return {"x": jnp.asarray(np.linspace(-1.5, 2.0, 6), dtype)}


# One jitted gradient, compiled once per tree layout and shared by the process, keeps the
# "eager" runs about the transform alone.
_value_and_grad = jax.jit(jax.value_and_grad(loss))


def run(
    tx: Any,
    params: Any,
    steps: int = 25,
    jit: bool = False,
    extra_args: bool = False,
) -> tuple[Any, Any]:
    """Train ``params`` on :func:`loss` for ``steps`` steps with ``tx``; return (params, state).

    With ``jit=False`` the transform's ``update`` runs op by op (eagerly); with ``jit=True``
    update and apply run as one compiled function.
    """
    state = tx.init(params)

    def step(params, state, value, grads):
        kwargs = {"value": value, "grad": grads, "value_fn": loss} if extra_args else {}
        updates, state = tx.update(grads, state, params, **kwargs)
        return jopt.apply_updates(params, updates), state

    if jit:
        step = jax.jit(step)
    for _ in range(steps):
        value, grads = _value_and_grad(params)
        grads = jax.tree.map(lambda g, p: g.astype(jnp.result_type(p)), grads, params)
        params, state = step(params, state, value, grads)
    return params, state
