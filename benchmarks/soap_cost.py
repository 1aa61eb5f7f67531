"""What a SOAP step costs next to AdamW, and the state it keeps: ``python -m benchmarks.soap_cost``.

Each optimizer runs ``precondition_frequency`` steps (one of them a basis refresh) inside one
jitted ``lax.scan`` on fixed gradients; the time per step is that run's median over
repetitions divided by the steps, so SOAP's QR is amortized as in training. The first call
(eigh) is excluded: it runs once per training run. Not a timed test.

Run it with ``OPENBLAS_NUM_THREADS=1`` on a shared CPU: jax's CPU QR and eigh call LAPACK,
whose spinning OpenBLAS threads make a 1024x1024 QR 15x slower (5 s) on an oversubscribed
2-core machine.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import jopt

TREES = {
    "r3_tree": [(16, 48), (48,), (4, 8, 6), (8, 8)],
    "mlp_256": [(256, 256), (256,), (256, 256), (256,), (256, 10), (10,)],
    "square_1024": [(1024, 1024), (1024,)],
}


def _tree(shapes):
    rng = np.random.default_rng(0)
    return {f"p{i}": jnp.asarray(rng.normal(size=s), jnp.float32) for i, s in enumerate(shapes)}


def _state_floats(tx, params):
    state = jax.eval_shape(tx.init, params)
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state) if x.ndim > 0)


def _seconds_per_step(tx, params, steps, repetitions):
    grads = jax.tree.map(lambda p: 0.01 * p + 0.1, params)

    def body(carry, _):
        p, s = carry
        u, s = tx.update(grads, s, p)
        return (jopt.apply_updates(p, u), s), None

    run = jax.jit(lambda p, s: jax.lax.scan(body, (p, s), None, length=steps)[0])
    state = tx.init(params)
    _, state = tx.update(grads, state, params)  # SOAP's first call (eigh), once
    jax.block_until_ready(run(params, state))
    times = []
    for _ in range(repetitions):
        start = time.perf_counter()
        jax.block_until_ready(run(params, state))
        times.append(time.perf_counter() - start)
    return float(np.median(times)) / steps


def _mlp_step_seconds(tx, width, batch, steps, repetitions):
    """A whole training step (forward, backward, update) of a 3-layer tanh MLP."""
    params = _tree([(width, width), (width,), (width, width), (width,), (width, 10), (10,)])
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(steps, batch, width)), jnp.float32)
    y = jnp.asarray(rng.normal(size=(steps, batch, 10)), jnp.float32)

    def loss(p, xb, yb):
        h = jnp.tanh(xb @ p["p0"] + p["p1"])
        h = jnp.tanh(h @ p["p2"] + p["p3"])
        return jnp.mean((h @ p["p4"] + p["p5"] - yb) ** 2)

    def body(carry, xy):
        p, s = carry
        g = jax.grad(loss)(p, *xy)
        u, s = tx.update(g, s, p)
        return (jopt.apply_updates(p, u), s), None

    run = jax.jit(lambda p, s: jax.lax.scan(body, (p, s), (x, y))[0])
    state = tx.init(params)
    jax.block_until_ready(run(params, state))
    times = []
    for _ in range(repetitions):
        start = time.perf_counter()
        jax.block_until_ready(run(params, state))
        times.append(time.perf_counter() - start)
    return float(np.median(times)) / steps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trees", default=",".join(TREES))
    parser.add_argument("--precondition-frequency", type=int, default=10)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--batches", default="256,4096")
    args = parser.parse_args(argv)
    f = args.precondition_frequency
    print(f"device: {jax.devices()[0].device_kind}, {f} steps a run (one refresh)")
    print("| tree | params | SOAP floats/param | AdamW floats/param | SOAP s/step | "
          "AdamW s/step | ratio |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name in args.trees.split(","):
        params = _tree(TREES[name])
        n = sum(int(np.prod(s)) for s in TREES[name])
        soap = jopt.contrib.soap(precondition_frequency=f)
        adamw = jopt.adamw(3e-3)
        t_soap = _seconds_per_step(soap, params, f, args.repetitions)
        t_adamw = _seconds_per_step(adamw, params, f, args.repetitions)
        print(f"| {name} | {n} | {_state_floats(soap, params) / n:.2f} | "
              f"{_state_floats(adamw, params) / n:.2f} | {t_soap:.2e} | {t_adamw:.2e} | "
              f"{t_soap / t_adamw:.2f} |")  # fmt: skip
    print("\n| whole training step, MLP 256-256-10, batch | SOAP s/step | AdamW s/step | ratio |")
    print("|---|---|---|---|")
    for batch in args.batches.split(","):
        t_soap, t_adamw = (
            _mlp_step_seconds(tx, 256, int(batch), f, args.repetitions)
            for tx in (jopt.contrib.soap(precondition_frequency=f), jopt.adamw(3e-3))
        )
        print(f"| {batch} | {t_soap:.2e} | {t_adamw:.2e} | {t_soap / t_adamw:.2f} |")


if __name__ == "__main__":
    main()
