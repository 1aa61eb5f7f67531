"""scikit-learn's bundled digits (no download), standardised, and a small MLP on them."""

import functools

import jax
import jax.numpy as jnp
import numpy as np


@functools.cache
def digits_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x.astype(np.float32) / 16.0, y, test_size=0.25, random_state=0, stratify=y
    )
    mean, std = x_train.mean(0), x_train.std(0) + 1e-3
    return (x_train - mean) / std, y_train, (x_test - mean) / std, y_test


def init_mlp(seed=0, hidden=32):
    k1, k2 = jax.random.split(jax.random.key(seed))
    return {
        "w1": jax.random.normal(k1, (64, hidden)) / 8.0,
        "b1": jnp.zeros(hidden),
        "w2": jax.random.normal(k2, (hidden, 10)) / jnp.sqrt(hidden),
        "b2": jnp.zeros(10),
    }


def logits(params, x):
    return jax.nn.relu(x @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"]


def cross_entropy(params, x, y):
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits(params, x)), y[:, None], 1))


def accuracy(params, x, y):
    return jnp.mean(jnp.argmax(logits(params, x), -1) == y)


def stacked_batches(batch_size=128, seed=0):
    """Shuffled minibatches of the train split, stacked on a leading axis (remainder dropped)."""
    x, y, _, _ = digits_split()
    order = np.random.default_rng(seed).permutation(len(x))
    count = len(x) // batch_size
    order = order[: count * batch_size].reshape(count, batch_size)
    return {"x": jnp.asarray(x[order]), "y": jnp.asarray(y[order])}
