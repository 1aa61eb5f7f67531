"""``python -m benchmarks.checkpoint``: what the checkpoint manifest costs to save and restore.

Saves and restores a GPT-2-small-shaped float32 state (params and Adam's two moments: 124M
parameters, 1.5 GB with the defaults) with a :class:`~jopt.train.checkpoint.Checkpointer`
with and without ``checksums``, synchronous and asynchronous, the four interleaved (the
order rotates each round), and prints median seconds and the ratio with/without:

- ``save``: a synchronous save (orbax's write, the commit and, with checksums, the manifest);
- ``restore``: the latest checkpoint into the template (verified first with checksums),
  until the arrays are ready;
- ``async save, blocking``: what an asynchronous save (the default) blocks the caller for;
- ``async save, total``: until it is on disk (the manifest is hashed in orbax's thread).

Also prints the seconds of hashing the step folder alone. Each variant writes to its own
folder under ``--dir`` (keep_last=1, so each holds one checkpoint at a time).

Small run: ``python -m benchmarks.checkpoint --width 192 --layers 2 --vocab 8192``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

import jopt
from jopt.train import TrainState, _integrity
from jopt.train.checkpoint import Checkpointer


def gpt2_params(width: int, layers: int, vocab: int, context: int = 1024) -> dict:
    """Random float32 params with GPT-2's shapes (width 768, 12 layers, vocab 50257: 124M)."""
    rng = np.random.default_rng(0)

    def normal(*shape):
        return jnp.asarray(rng.standard_normal(shape, dtype=np.float32) * 0.02)

    def block():
        return {
            "ln1": {"scale": normal(width), "bias": normal(width)},
            "qkv": {"kernel": normal(width, 3 * width), "bias": normal(3 * width)},
            "proj": {"kernel": normal(width, width), "bias": normal(width)},
            "ln2": {"scale": normal(width), "bias": normal(width)},
            "fc": {"kernel": normal(width, 4 * width), "bias": normal(4 * width)},
            "out": {"kernel": normal(4 * width, width), "bias": normal(width)},
        }

    return {
        "wte": normal(vocab, width),
        "wpe": normal(context, width),
        "blocks": [block() for _ in range(layers)],
        "ln_f": {"scale": normal(width), "bias": normal(width)},
    }


def adam_state(params: dict) -> TrainState:
    """A state whose Adam moments hold values (random-looking, like trained ones)."""
    state = TrainState.create(params, jopt.adam(1e-3))
    return state.apply_gradients(params)


def _timed_rounds(state: TrainState, root: str, repetitions: int, warmup: int) -> dict:
    """Median seconds of each (measure, variant), the variants interleaved, order rotating."""
    checkpointers = {
        (checksums, async_save): Checkpointer(
            os.path.join(root, f"{checksums}-{async_save}"),
            keep_last=1, async_save=async_save, checksums=checksums,
        )
        for checksums in (False, True)
        for async_save in (False, True)
    }  # fmt: skip
    times: dict = {}
    keys = list(checkpointers)
    for round_index in range(warmup + repetitions):
        shift = round_index % len(keys)
        for key in keys[shift:] + keys[:shift]:
            ckpt, (checksums, async_save) = checkpointers[key], key
            start = time.perf_counter()
            ckpt.save(state.replace(step=jnp.asarray(round_index + 1)))
            blocking = time.perf_counter() - start
            ckpt.wait()
            saved = time.perf_counter() - start
            start = time.perf_counter()
            if not async_save:  # the restore is the same for both; time it once
                jax.block_until_ready(ckpt.restore(state).state)
            restored = time.perf_counter() - start
            if round_index >= warmup:
                name = "with" if checksums else "without"
                measures = [("async save, blocking", blocking), ("async save, total", saved)]
                if not async_save:
                    measures = [("save", saved), ("restore", restored)]
                for measure, seconds in measures:
                    times.setdefault(measure, {}).setdefault(name, []).append(seconds)
    for ckpt in checkpointers.values():
        ckpt.close()
    return {m: {n: statistics.median(t) for n, t in v.items()} for m, v in times.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.checkpoint", description=__doc__)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--vocab", type=int, default=50257)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--dir", default=None, help="where to write (default: a temporary folder)")
    args = parser.parse_args(argv)
    state = adam_state(gpt2_params(args.width, args.layers, args.vocab))
    count = sum(leaf.size for leaf in jax.tree.leaves(state.params))
    nbytes = sum(leaf.nbytes for leaf in jax.tree.leaves((state.params, state.opt_state)))
    root = tempfile.mkdtemp(dir=args.dir, prefix="jopt_checkpoint_bench_")
    try:
        medians = _timed_rounds(state, root, args.repetitions, args.warmup)
        folder = os.path.join(root, "True-False", str(args.warmup + args.repetitions))
        start = time.perf_counter()
        _integrity.checksum_files(folder, _integrity.files_in(folder))
        hashing = time.perf_counter() - start
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"state: {count / 1e6:.1f}M parameters, {nbytes / 1e9:.2f} GB with Adam's moments")
    print(f"{'':>20} {'without':>9} {'with':>9} {'ratio':>7}  (median seconds)")
    for measure, by_variant in medians.items():
        without, with_ = by_variant["without"], by_variant["with"]
        print(f"{measure:>20} {without:9.3f} {with_:9.3f} {with_ / without:7.3f}")
    print(f"hashing the step folder alone: {hashing:.3f} s")


if __name__ == "__main__":
    main()
