"""``python -m benchmarks.lowbit``: what 8/4-bit Adam states save and cost.

Three measures, against optax's float32 ``adamw`` (and jopt's):

- **state bytes a parameter** on a GPT-2-shaped tree of about 110M parameters (width 768,
  12 layers, vocabulary 32,000), summed over the leaves of ``tx.init``'s abstract state
  (``jax.eval_shape``: nothing is allocated). Leaves under 4,096 values (biases, norms)
  keep float32 moments, as in the references;
- **step time**: medians of interleaved jitted steps (params and state donated) on a tree
  of ``--width``-square matrices, and their ratios to optax;
- **temporary bytes**: ``memory_analysis().temp_size_in_bytes`` of the compiled step on
  one leaf of ``--leaf`` values (what XLA allocates beyond the inputs and outputs).

``--quick`` runs tiny sizes (for the tests); the defaults take about a minute on 2 cores.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jopt
from benchmarks._timing import compiled_step, interleaved_medians


def _optimizers() -> dict:
    return {
        "optax adamw": optax.adamw(1e-3),
        "jopt adamw": jopt.adamw(1e-3),
        "adamw_8bit": jopt.contrib.adamw_8bit(1e-3),
        "adamw_4bit": jopt.contrib.adamw_4bit(1e-3),
    }


def gpt2_shapes(width: int = 768, layers: int = 12, vocab: int = 32000) -> dict:
    """Abstract float32 params with GPT-2's layout (embeddings, blocks, final norm)."""

    def leaf(*shape):
        return jax.ShapeDtypeStruct(shape, jnp.float32)

    def block():
        return {
            "ln1": {"scale": leaf(width), "bias": leaf(width)},
            "qkv": {"kernel": leaf(width, 3 * width), "bias": leaf(3 * width)},
            "proj": {"kernel": leaf(width, width), "bias": leaf(width)},
            "ln2": {"scale": leaf(width), "bias": leaf(width)},
            "fc": {"kernel": leaf(width, 4 * width), "bias": leaf(4 * width)},
            "out": {"kernel": leaf(4 * width, width), "bias": leaf(width)},
        }

    return {"wte": leaf(vocab, width), "wpe": leaf(1024, width),
            "blocks": [block() for _ in range(layers)],
            "ln_f": {"scale": leaf(width), "bias": leaf(width)}}  # fmt: skip


def state_bytes_per_param(params: dict) -> dict[str, float]:
    """Bytes of each optimizer's state over the number of params (count scalars included)."""
    count = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))
    out = {}
    for name, tx in _optimizers().items():
        state = jax.eval_shape(tx.init, params)
        out[name] = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state)) / count
    return out


def _random_tree(shapes: dict, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {k: jnp.asarray(rng.normal(size=s).astype(np.float32) * 0.02) for k, s in shapes.items()}


def step_times(width: int, leaves: int, repetitions: int) -> dict[str, float]:
    """Median seconds of one jitted step of each optimizer, interleaved."""
    shapes = {f"w{i}": (width, width) for i in range(leaves)}
    params, grads = _random_tree(shapes, 0), _random_tree(shapes, 1)
    steps = {}
    for name, tx in _optimizers().items():
        step, state, _ = compiled_step(tx, jax.tree.map(jnp.copy, params), grads, compiles=1)
        steps[name] = (step, (jax.tree.map(jnp.copy, params), state), grads)
    return interleaved_medians(steps, repetitions)


def temp_bytes(size: int) -> dict[str, int]:
    """XLA's temporary bytes for one step on a single leaf of ``size`` values."""
    params = {"w": jnp.zeros((size // 1024, 1024), jnp.float32)}
    out = {}
    for name, tx in _optimizers().items():
        step, _, _ = compiled_step(tx, params, params, compiles=1)
        out[name] = int(step.memory_analysis().temp_size_in_bytes)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lowbit", description=__doc__)
    parser.add_argument("--width", type=int, default=1024, help="side of the timed matrices")
    parser.add_argument("--leaves", type=int, default=4, help="number of timed matrices")
    parser.add_argument("--leaf", type=int, default=4 * 2**20, help="values of the memory leaf")
    parser.add_argument("--repetitions", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a few repetitions")
    args = parser.parse_args(argv)
    if args.quick:
        args.width, args.leaves, args.leaf, args.repetitions = 128, 2, 2**16, 3
    shapes = gpt2_shapes() if not args.quick else gpt2_shapes(64, 2, 512)
    count = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(shapes))
    bytes_per = state_bytes_per_param(shapes)
    times = step_times(args.width, args.leaves, args.repetitions)
    temps = temp_bytes(args.leaf)
    timed = args.leaves * args.width**2
    print(f"device: {jax.devices()[0].device_kind}; state bytes on {count / 1e6:.1f}M params; "
          f"step time on {args.leaves} x {args.width}^2 = {timed / 1e6:.2f}M params; "
          f"temp bytes on one leaf of {args.leaf / 1e6:.2f}M")  # fmt: skip
    print("| optimizer | state bytes / param | step ms | ratio to optax | temp MB |")
    print("|---|---:|---:|---:|---:|")
    base = times["optax adamw"]
    for name in _optimizers():
        print(f"| {name} | {bytes_per[name]:.3f} | {times[name] * 1e3:.2f} | "
              f"{times[name] / base:.2f} | {temps[name] / 2**20:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
