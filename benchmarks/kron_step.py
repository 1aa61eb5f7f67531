"""PSGD Kron's jitted step time and state size against AdamW (the figures of the guide).

Run with ``python -m benchmarks.kron_step``. The tree is {1024x256, 256x256, 256,
3x3x64x64}, float32; each row reports the mean time of 20 jitted steps after a warm-up
and the state's floats per parameter. Kron has no optax twin: its reference, psgd-jax,
needs a venv of its own (``tests/fixtures/make_kron_reference.py``), where the same
tree and loop can be timed with ``psgd_jax.kron.kron``.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

import jopt

SHAPES = {"embed": (1024, 256), "attn": (256, 256), "bias": (256,), "conv": (3, 3, 64, 64)}


def _floats(tree) -> int:
    leaves = jax.tree.leaves(tree)
    return sum(x.size for x in leaves if jnp.issubdtype(x.dtype, jnp.floating))


def time_step(tx, params, grads, repetitions: int = 20) -> float:
    """Mean milliseconds of one jitted ``tx.update`` (compiled and warmed up first)."""
    step = jax.jit(tx.update)
    updates, state = step(grads, tx.init(params), params)
    jax.block_until_ready(updates)
    start = time.perf_counter()
    for _ in range(repetitions):
        updates, state = step(grads, state, params)
    jax.block_until_ready(updates)
    return (time.perf_counter() - start) / repetitions * 1e3


def main() -> None:
    rng = np.random.default_rng(0)
    params = {k: jnp.asarray(rng.normal(size=s), jnp.float32) for k, s in SHAPES.items()}
    grads = jax.tree.map(lambda p: 0.01 * p, params)
    size = sum(p.size for p in jax.tree.leaves(params))
    kron = jopt.contrib.kron
    rows = {
        "adamw": jopt.adamw(1e-3),
        "kron p=1 (refit every step)": kron(1e-3, preconditioner_update_probability=1.0),
        "kron p=0.1": kron(1e-3, preconditioner_update_probability=0.1),
        "kron p=0 (precondition only)": kron(1e-3, preconditioner_update_probability=0.0),
        "kron one_diag p=1": kron(
            1e-3, preconditioner_update_probability=1.0, memory_save_mode="one_diag"
        ),
    }
    print(f"{size} params, jax {jax.__version__}, {jax.devices()[0].device_kind}")
    for name, tx in rows.items():
        floats = _floats(tx.init(params)) / size
        print(f"{name:30s} {time_step(tx, params, grads):8.2f} ms/step  {floats:.3f} floats/param")


if __name__ == "__main__":
    main()
