"""Train a small Flax NNX MLP on scikit-learn's digits with jopt: ``python -m jopt.demo``.

Everything the training layer offers, end to end: a standardised train /
validation / test split, ``chain(clip_by_global_norm, adamw)`` on a warmup-cosine
schedule, :func:`jopt.train.fit` with early stopping that restores the best
params, orbax checkpoints, a progress bar and the training curves in
``runs/demo/curves.png``. The last line printed is the test accuracy to four decimals,
e.g. ``test accuracy: 0.9861``.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

import jopt
from jopt import train
from jopt.train.checkpoint import Checkpointer


def load_splits(seed: int = 0) -> tuple[dict, dict, dict]:
    """Digits (bundled with scikit-learn: no download), split 70/10/20 and standardised on train."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=0.2, random_state=seed, stratify=y
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=0.125, random_state=seed, stratify=y_rest
    )
    stats = train.fit_standardize(x_train)

    def split(x, y):
        return {"x": np.asarray(train.standardize(x, stats), np.float32), "y": y.astype(np.int32)}

    return split(x_train, y_train), split(x_val, y_val), split(x_test, y_test)


DROPOUT = 0.2


def _dropout(x, rng, layer):
    """Inverted dropout (identity at evaluation, when ``rng`` is None)."""
    if rng is None:
        return x
    keep = jax.random.bernoulli(jax.random.fold_in(rng, layer), 1.0 - DROPOUT, x.shape)
    return jnp.where(keep, x / (1.0 - DROPOUT), 0.0)


def make_model(seed: int = 0):
    """A 64-256-128-10 MLP with GELU activations, as a Flax NNX module."""
    from flax import nnx

    class MLP(nnx.Module):
        def __init__(self, rngs: nnx.Rngs):
            self.hidden1 = nnx.Linear(64, 256, rngs=rngs)
            self.hidden2 = nnx.Linear(256, 128, rngs=rngs)
            self.out = nnx.Linear(128, 10, rngs=rngs)

        def __call__(self, x, rng=None):
            x = _dropout(jax.nn.gelu(self.hidden1(x)), rng, 0)
            return self.out(_dropout(jax.nn.gelu(self.hidden2(x)), rng, 1))

    return MLP(nnx.Rngs(seed))


def main(
    epochs: int = 40, out_dir: str = "runs/demo", progress: bool = True, seed: int = 2
) -> float:
    """Train, print one line per epoch, write the curves; return the test accuracy."""
    from flax import nnx

    train_set, val_set, test_set = load_splits(seed)
    graphdef, params = nnx.split(make_model(seed))

    def logits(params, x, rng=None):
        return nnx.merge(graphdef, params)(x, rng)

    def cross_entropy(params, batch, rng):
        log_probs = jax.nn.log_softmax(logits(params, batch["x"], rng))
        return -jnp.mean(jnp.take_along_axis(log_probs, batch["y"][:, None], axis=1))

    def metrics(params, batch):
        out = logits(params, batch["x"])
        log_probs = jax.nn.log_softmax(out)
        loss = -jnp.mean(jnp.take_along_axis(log_probs, batch["y"][:, None], axis=1))
        return {"loss": loss, "accuracy": jnp.mean(jnp.argmax(out, -1) == batch["y"])}

    batches = train.Batches(train_set, batch_size=64, seed=seed)
    schedule = jopt.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=2e-3, warmup_steps=len(batches),
        decay_steps=max(epochs, 2) * len(batches), end_value=1e-5,
    )  # fmt: skip
    tx = jopt.chain(jopt.clip_by_global_norm(1.0), jopt.adamw(schedule, weight_decay=1e-4))
    state = train.TrainState.create(params, tx, rng=seed)
    stopper = train.EarlyStopping(monitor="val_loss", mode="min", patience=8, restore_best=True)

    def report(row):
        print(
            f"epoch {row['epoch'] + 1:3d}  loss {row['loss']:.4f}  val_loss {row['val_loss']:.4f}"
            f"  val_accuracy {row['val_accuracy']:.4f}",
            flush=True,
        )

    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder, Checkpointer(
        os.path.join(folder, "checkpoints"), keep_last=2, keep_best=1, metric="val_accuracy",
        mode="max",
    ) as checkpointer:  # fmt: skip
        result = train.fit(
            state, train.make_train_step(cross_entropy, with_rng=True, jit=False), batches,
            epochs=epochs,
            eval_step=train.make_eval_step(metrics), eval_data=val_set, early_stopping=stopper,
            checkpointer=checkpointer, progress=progress, on_epoch_end=report,
        )  # fmt: skip
    result.history.to_json(os.path.join(out_dir, "history.json"))
    result.history.plot(os.path.join(out_dir, "curves.png"))
    if result.stop_reason == "early_stopping":
        best = int(result.early_stopping_state.best_epoch) + 1
        print(f"early stopping after epoch {len(result.history)}; restored epoch {best}")
    accuracy = float(jax.jit(metrics)(result.state.params, test_set)["accuracy"])
    print(f"curves: {os.path.join(out_dir, 'curves.png')}")
    print(f"test accuracy: {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--out-dir", default="runs/demo")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--seed", type=int, default=2, help="split, initialisation and order")
    args = parser.parse_args()
    main(args.epochs, args.out_dir, not args.no_progress, args.seed)
