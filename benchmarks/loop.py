"""``python -m benchmarks.loop``: the epoch time of :func:`jopt.train.fit` against a bare loop.

The reference is what a user would write by hand: a Python loop over the same batches
calling the same jitted, donating train step, adding each step's loss on the device and
reading the epoch's mean loss once at the end. ``fit`` adds what it promises (bad-step
skipping and counting, metric sums, prefetching, the progress bar) and must cost
little on top. One epoch of each, alternately, after both have compiled; medians of the
per-epoch wall times and their ratio, with and without the progress bar, and without
the bar at ``steps_per_call=1`` (one compiled call per batch, as the bare loop makes).

Two models: a small MLP (8,192 examples, batch 32, Adam: many cheap steps, where
per-step Python overhead shows) and the 1,024-leaf scale-and-bias stack of
:mod:`benchmarks.train_step` (few expensive steps).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import jopt
from benchmarks.train_step import deep_scale_bias_params
from benchmarks.train_step import loss_fn as stack_loss
from jopt.train import Batches, TrainState, fit, make_train_step


def _mlp_problem(examples: int, batch_size: int):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(examples, 32)).astype(np.float32)
    y = (np.sin(x[:, :4].sum(1)) > 0).astype(np.int32)
    params = {
        "w1": jnp.asarray(rng.normal(size=(32, 64)) * 0.2, jnp.float32), "b1": jnp.zeros(64),
        "w2": jnp.asarray(rng.normal(size=(64, 2)) * 0.2, jnp.float32), "b2": jnp.zeros(2),
    }  # fmt: skip

    def loss(p, batch):
        hidden = jax.nn.relu(batch["x"] @ p["w1"] + p["b1"])
        logits = hidden @ p["w2"] + p["b2"]
        return jopt.losses.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean()

    return params, loss, Batches({"x": x, "y": y}, batch_size=batch_size, seed=0)


def _stack_problem(layers: int, width: int, batches: int):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batches * 8, width)).astype(np.float32)
    y = (0.1 * rng.normal(size=(batches * 8, width))).astype(np.float32)
    data = Batches({"x": x, "y": y}, batch_size=8, seed=0)
    return deep_scale_bias_params(layers, width), stack_loss, data


def _bare_epoch(step, state, data, epoch):
    total = jnp.zeros([], jnp.float32)
    for batch in data.epoch(epoch):
        state, metrics = step(state, batch)
        total = total + metrics["loss"]
    return state, float(total) / len(data)  # the one read of the epoch


def measure(name: str, params, loss, data, epochs: int) -> dict[str, float]:
    """Median epoch seconds of the bare loop and of fit (with and without the bar)."""
    tx = jopt.adam(1e-3)
    bare_step = make_train_step(loss)  # jitted and donating, as a user would write it
    fit_step = make_train_step(loss, jit=False)  # fit compiles it with its guard
    copy = lambda: jax.tree.map(jnp.array, params)  # noqa: E731 - steps donate their state
    bare_state = TrainState.create(copy(), tx)
    bare_state, _ = _bare_epoch(bare_step, bare_state, data, 0)  # compiles
    fit_state = fit(TrainState.create(copy(), tx), fit_step, data, epochs=1, progress=False).state
    fit_state = fit(fit_state, fit_step, data, epochs=1, progress=False, steps_per_call=1).state
    variants = {"fit": (False, 16), "fit_bar": (True, 16), "fit_1": (False, 1)}
    times: dict[str, list[float]] = {"bare": [], **{k: [] for k in variants}}
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        bare_state, _ = _bare_epoch(bare_step, bare_state, data, epoch)
        times["bare"].append(time.perf_counter() - start)
        for key, (bar, per_call) in variants.items():
            start = time.perf_counter()
            fit_state = fit(fit_state, fit_step, data, epochs=1, progress=bar,
                            steps_per_call=per_call).state  # fmt: skip
            jax.block_until_ready(fit_state.params)
            times[key].append(time.perf_counter() - start)
    medians = {k: statistics.median(v) for k, v in times.items()}
    row = {"model": name, **{f"{k}_s": v for k, v in medians.items()}}
    for key in variants:
        row[f"{key}/bare"] = medians[key] / medians["bare"]
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loop", description=__doc__)
    parser.add_argument("--epochs", type=int, default=7, help="timed epochs of each variant")
    parser.add_argument("--quick", action="store_true", help="small sizes, to check it runs")
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    parser.add_argument("--models", default="mlp,stack", help="comma-separated: mlp, stack")
    args = parser.parse_args(argv)
    examples, layers, width = (512, 16, 256) if args.quick else (8192, 512, 4096)
    models = args.models.split(",")
    rows = []
    if "mlp" in models:
        rows.append(measure("mlp 8192x32, batch 32", *_mlp_problem(examples, 32), args.epochs))
    if "stack" in models:
        problem = _stack_problem(layers, width, 8)
        rows.append(measure("1024-leaf stack, batch 8", *problem, args.epochs))
    print(f"{'model':<28}{'bare s':>9}{'fit s':>9}{'fit/bare':>10}{'bar/bare':>10}"
          f"{'1/call':>10}")  # fmt: skip
    for r in rows:
        print(f"{r['model']:<28}{r['bare_s']:>9.3f}{r['fit_s']:>9.3f}{r['fit/bare']:>10.3f}"
              f"{r['fit_bar/bare']:>10.3f}{r['fit_1/bare']:>10.3f}")  # fmt: skip
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
