"""The convergence benchmark's two tasks: an MLP on scikit-learn's digits and a tiny
transformer language model on text from a synthetic second-order Markov source.

A task holds its data as device arrays and three pure functions: ``init(key) -> params``,
``loss(params, data, indices) -> scalar`` (the training loss on the batch ``indices``
selects) and ``evaluate(params, data) -> (loss, accuracy)`` on held-out examples. The
harness draws the batch indices on the host, so a run is fixed by its seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import jopt


class Task(NamedTuple):
    """One benchmark problem (see the module docstring)."""

    name: str
    description: str
    data: dict[str, jax.Array]  # training and held-out arrays, passed to the jitted step
    train_size: int  # number of training examples the batch indices range over
    batch_size: int
    init: Callable[[jax.Array], Any]
    loss: Callable[[Any, dict, jax.Array], jax.Array]
    evaluate: Callable[[Any, dict], tuple[jax.Array, jax.Array]]
    floor: float | None  # the lowest held-out loss reachable, where known


def _dense(key: jax.Array, fan_in: int, fan_out: int, gain: float = 1.0) -> jax.Array:
    return gain * jax.random.normal(key, (fan_in, fan_out)) / math.sqrt(fan_in)


def _cross_entropy(logits: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
    losses = jopt.losses.softmax_cross_entropy_with_integer_labels(logits, labels)
    return losses.mean(), (jnp.argmax(logits, -1) == labels).mean()


def digits_task(hidden: int = 128, batch_size: int = 64) -> Task:
    """A 64-hidden-hidden-10 GELU MLP on digits: 1,437 training images, 360 test images."""
    from sklearn.datasets import load_digits  # noqa: PLC0415
    from sklearn.model_selection import train_test_split  # noqa: PLC0415

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, random_state=0, stratify=y
    )
    # Pixels are 0..16; a pixel (nearly) constant on the training set is only centred.
    mean, std = x_train.mean(0), np.maximum(x_train.std(0), 1.0)
    data = {
        "x": jnp.asarray((x_train - mean) / std, jnp.float32),
        "y": jnp.asarray(y_train, jnp.int32),
        "x_test": jnp.asarray((x_test - mean) / std, jnp.float32),
        "y_test": jnp.asarray(y_test, jnp.int32),
    }
    sizes = (64, hidden, hidden, 10)

    def init(key):
        keys = jax.random.split(key, len(sizes) - 1)
        return [
            {"w": _dense(k, n, m, math.sqrt(2.0)), "b": jnp.zeros(m)}
            for k, n, m in zip(keys, sizes[:-1], sizes[1:], strict=True)
        ]

    def logits(params, x):
        for layer in params[:-1]:
            x = jax.nn.gelu(x @ layer["w"] + layer["b"])
        return x @ params[-1]["w"] + params[-1]["b"]

    def loss(params, data, indices):
        return _cross_entropy(logits(params, data["x"][indices]), data["y"][indices])[0]

    def evaluate(params, data):
        return _cross_entropy(logits(params, data["x_test"]), data["y_test"])

    description = (
        f"MLP 64-{hidden}-{hidden}-10 (GELU) on scikit-learn digits, batch {batch_size}; "
        "test loss on 360 held-out images"
    )
    return Task("digits", description, data, len(y_train), batch_size, init, loss, evaluate, None)


def markov_source(
    vocab: int, successors: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random second-order Markov source: for each context ``(a, b)``, ``successors``
    possible next tokens with Dirichlet(1) probabilities.

    Returns the table of next tokens ``(vocab, vocab, successors)``, their probabilities
    (same shape) and the cumulative probabilities used to sample.
    """
    rng = np.random.default_rng(seed)
    nexts = np.stack(
        [rng.choice(vocab, successors, replace=False) for _ in range(vocab * vocab)]
    ).reshape(vocab, vocab, successors)
    probs = rng.dirichlet(np.ones(successors), size=(vocab, vocab))
    return nexts, probs, np.cumsum(probs, -1)


def sample_sequences(
    source: tuple[np.ndarray, np.ndarray, np.ndarray],
    count: int,
    length: int,
    rng: np.random.Generator,
    burn_in: int = 16,
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` token sequences of ``length`` from the source (after ``burn_in`` tokens),
    and the source's own negative log-likelihood of each token after the first two."""
    nexts, probs, cumulative = source
    vocab = nexts.shape[0]
    tokens = np.zeros((count, burn_in + length), np.int64)
    nll = np.zeros((count, burn_in + length))
    tokens[:, :2] = rng.integers(0, vocab, (count, 2))
    for t in range(2, burn_in + length):
        a, b = tokens[:, t - 2], tokens[:, t - 1]
        choice = (rng.random(count)[:, None] > cumulative[a, b]).sum(-1)
        choice = np.minimum(choice, nexts.shape[-1] - 1)
        tokens[:, t] = nexts[a, b, choice]
        nll[:, t] = -np.log(probs[a, b, choice])
    return tokens[:, burn_in:], nll[:, burn_in:]


def _layer_norm(p: dict, x: jax.Array) -> jax.Array:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + 1e-5) * p["scale"] + p["bias"]


def _attention(p: dict, x: jax.Array, heads: int) -> jax.Array:
    batch, length, width = x.shape
    q, k, v = jnp.split(x @ p["qkv"], 3, axis=-1)
    split = lambda t: t.reshape(batch, length, heads, width // heads)
    scores = jnp.einsum("bqhd,bkhd->bhqk", split(q), split(k)) / math.sqrt(width // heads)
    causal = jnp.tril(jnp.ones((length, length), bool))
    weights = jax.nn.softmax(jnp.where(causal, scores, -1e9), axis=-1)
    mixed = jnp.einsum("bhqk,bkhd->bqhd", weights, split(v)).reshape(batch, length, width)
    return mixed @ p["out"]


def _init_transformer(key, vocab: int, width: int, layers: int, context: int) -> dict:
    keys = iter(jax.random.split(key, 3 + 4 * layers))
    residual_gain = 1.0 / math.sqrt(2 * layers)
    norm = lambda: {"scale": jnp.ones(width), "bias": jnp.zeros(width)}
    blocks = [
        {
            "norm1": norm(),
            "qkv": _dense(next(keys), width, 3 * width),
            "out": _dense(next(keys), width, width, residual_gain),
            "norm2": norm(),
            "up": _dense(next(keys), width, 4 * width),
            "down": _dense(next(keys), 4 * width, width, residual_gain),
        }
        for _ in range(layers)
    ]
    return {
        "embed": 0.5 * jax.random.normal(next(keys), (vocab, width)),
        "position": 0.1 * jax.random.normal(next(keys), (context, width)),
        "blocks": blocks,
        "norm": norm(),
        "unembed": _dense(next(keys), width, vocab),
    }


def _transformer_logits(params: dict, tokens: jax.Array, heads: int) -> jax.Array:
    x = params["embed"][tokens] + params["position"][: tokens.shape[1]]
    for block in params["blocks"]:
        x = x + _attention(block, _layer_norm(block["norm1"], x), heads)
        hidden = jax.nn.gelu(_layer_norm(block["norm2"], x) @ block["up"])
        x = x + hidden @ block["down"]
    return _layer_norm(params["norm"], x) @ params["unembed"]


def markov_lm_task(
    width: int = 64,
    layers: int = 2,
    heads: int = 2,
    context: int = 32,
    vocab: int = 16,
    successors: int = 3,
    batch_size: int = 8,
    train_sequences: int = 4096,
    test_sequences: int = 256,
) -> Task:
    """A pre-norm causal transformer LM on a synthetic second-order Markov source.

    The next token depends on the two before it, so the model must attend to position
    ``t-1`` as well as read ``t``; the source's own loss on the held-out text is the floor.
    """
    source = markov_source(vocab, successors)
    rng = np.random.default_rng(1)
    train, _ = sample_sequences(source, train_sequences, context + 1, rng)
    test, test_nll = sample_sequences(source, test_sequences, context + 1, rng)
    data = {"tokens": jnp.asarray(train, jnp.int32), "test": jnp.asarray(test, jnp.int32)}
    # The source's own loss on the held-out targets: a lower bound (the first target of a
    # window has one token of context in the window, where the source saw two).
    floor = float(test_nll[:, 1:].mean())

    def init(key):
        return _init_transformer(key, vocab, width, layers, context)

    def _loss(params, tokens):
        return _cross_entropy(_transformer_logits(params, tokens[:, :-1], heads), tokens[:, 1:])

    def loss(params, data, indices):
        return _loss(params, data["tokens"][indices])[0]

    def evaluate(params, data):
        return _loss(params, data["test"])

    description = (
        f"{layers}-layer transformer LM (d_model {width}, {heads} heads, context {context}), "
        f"vocabulary {vocab}, second-order Markov text ({successors} successors per context), "
        f"batch {batch_size}; loss on {test_sequences} held-out sequences"
    )
    return Task("lm", description, data, train_sequences, batch_size, init, loss, evaluate, floor)


def tasks(quick: bool = False) -> dict[str, Callable[[], Task]]:
    """Task name -> builder; ``quick`` shrinks the models for a smoke test."""
    if quick:
        return {
            "digits": lambda: digits_task(hidden=32, batch_size=32),
            "lm": lambda: markov_lm_task(width=32, layers=1, context=16, train_sequences=512),
        }
    return {"digits": digits_task, "lm": markov_lm_task}
