"""``python -m benchmarks.train_step``: a whole training step on 1024 small leaves vs optax.

The optimizer-only benchmark hands every variant ready-made gradients. Here the step
also runs the model forward and backward, so the fast path pays for what it changes
there: reading the parameters out of :class:`jopt.FlatTree` buffers and concatenating
the gradient. The model is a stack of ``x = tanh(x * scale + bias)`` layers (each
``scale`` and ``bias`` a leaf, like the norms and biases of a deep network) on a small
batch. Three variants run interleaved: optax's Adam on the tree, jopt's Adam on the tree
and jopt's Adam on a ``FlatTree``, the last two through :func:`jopt.train.make_train_step`.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jopt
from benchmarks._timing import interleaved_medians
from jopt.train import TrainState, make_train_step


def deep_scale_bias_params(layers: int, width: int) -> dict:
    """``layers`` (scale, bias) pairs of ``width`` elements: ``2 * layers`` leaves."""
    return {
        f"layer{i:04d}": {
            "scale": jnp.full((width,), 1.0 + 0.01 * (i % 5)),
            "bias": jnp.zeros(width),
        }
        for i in range(layers)
    }


def loss_fn(params: dict, batch: dict) -> jax.Array:
    x = batch["x"]
    for name in sorted(params):
        x = jnp.tanh(x * params[name]["scale"] + params[name]["bias"])
    return jnp.mean((x - batch["y"]) ** 2)


def _optax_step(tx):
    def step(state, batch):
        params, opt_state = state
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    return jax.jit(step, donate_argnums=0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.train_step", description=__doc__)
    parser.add_argument("--layers", type=int, default=512, help="leaves = 2 * layers")
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repetitions", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    batch = {
        "x": jnp.asarray(rng.normal(size=(args.batch, args.width)), jnp.float32),
        "y": jnp.asarray(rng.normal(size=(args.batch, args.width)), jnp.float32) * 0.1,
    }
    params = deep_scale_bias_params(args.layers, args.width)
    jopt_step = make_train_step(loss_fn)

    def carried(step):  # keep the state, drop the metrics
        return lambda state, batch: step(state, batch)[0]

    steps = {}
    for name in ("adam", "lamb"):
        tx = getattr(optax, name)(1e-3)
        steps[f"optax_{name}"] = (carried(_optax_step(tx)), (params, tx.init(params)), batch)
        steps[f"jopt_{name}"] = (
            carried(jopt_step),
            TrainState.create(params, getattr(jopt, name)(1e-3)),
            batch,
        )
        steps[f"fast_{name}"] = (
            carried(jopt_step),
            TrainState.create(jopt.FlatTree.from_tree(params), getattr(jopt, name)(1e-3)),
            batch,
        )
    # Donation consumes each state, so no two variants may share a buffer.
    steps = {name: (fn, jax.tree.map(jnp.copy, state), b) for name, (fn, state, b) in steps.items()}
    medians = interleaved_medians(steps, args.repetitions, args.warmup)
    leaves = 2 * args.layers
    print(
        f"train step, {leaves} leaves of {args.width}, batch {args.batch}, "
        f"median of {args.repetitions}:"
    )
    for name, seconds in medians.items():
        optax_seconds = medians["optax_" + name.split("_", 1)[1]]
        print(f"{name:>12}: {1e3 * seconds:8.2f} ms   ratio to optax {seconds / optax_seconds:.2f}")


if __name__ == "__main__":
    main()
