"""``python -m benchmarks.population``: 16 learning rates as one vmapped program vs one by one.

Trains the digits MLP of the tune tests with Adam for each learning rate, reports compile
and run seconds of the population program and of 16 sequential runs of the same program.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import jopt
from jopt import tune
from jopt.train.early_stopping import EarlyStopping
from tests.tune._digits import cross_entropy, digits_split, init_mlp, stacked_batches


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.population", description=__doc__)
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args(argv)
    _, _, x_val, y_val = digits_split()

    def loss_fn(params, batch):
        return cross_entropy(params, batch["x"], batch["y"])

    def eval_fn(params):
        return cross_entropy(params, x_val, y_val)

    kwargs = dict(
        make_tx=jopt.adam,
        hyperparams={"learning_rate": np.geomspace(1e-4, 1e-1, args.members)},
        loss_fn=loss_fn, eval_fn=eval_fn, params=init_mlp(), batches=stacked_batches(),
        num_steps=args.steps, eval_every=10, early_stopping=EarlyStopping(patience=3),
    )  # fmt: skip
    for vectorize in (True, False):
        start = time.perf_counter()
        jax.block_until_ready(tune.train_population(**kwargs, vectorize=vectorize).params)
        first = time.perf_counter() - start  # includes compiling
        start = time.perf_counter()
        jax.block_until_ready(tune.train_population(**kwargs, vectorize=vectorize).params)
        second = time.perf_counter() - start
        label = "population, one vmapped program" if vectorize else "same program, member by member"
        print(f"{label:>34}: first call {first:.2f}s, again {second:.2f}s")
    # What a user's 16 separate runs look like: a jitted step driven by a Python loop.
    batches = kwargs["batches"]
    start = time.perf_counter()
    for learning_rate in kwargs["hyperparams"]["learning_rate"]:
        tx = jopt.adam(float(learning_rate))
        params = init_mlp()
        state = tx.init(params)

        @jax.jit
        def step(params, state, batch, tx=tx):
            grads = jax.grad(loss_fn)(params, batch)
            updates, state = tx.update(grads, state, params)
            return jopt.apply_updates(params, updates), state

        for i in range(args.steps):
            batch = jax.tree.map(lambda b, i=i: b[i % len(b)], batches)
            params, state = step(params, state, batch)
            if (i + 1) % 10 == 0:
                float(eval_fn(params))  # the evaluation a loop with early stopping reads
        jax.block_until_ready(params)
    print(f"{'16 Python-loop runs (jitted step)':>34}: {time.perf_counter() - start:.2f}s")


if __name__ == "__main__":
    main()
