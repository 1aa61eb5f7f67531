"""In-memory data: minibatches in a per-epoch order, and feature scaling fitted on a split.

The order of epoch ``e`` is a pure function of ``(seed, e)``: a run resumed at
epoch ``e`` (even mid-epoch, with ``start``) sees exactly the batches an
uninterrupted run would. The permutation is drawn with ``jax.random``, so
:func:`jopt.train.fit_compiled` reproduces it inside ``jit``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jopt import _check as check
from jopt.base import ArrayTree

__all__ = [
    "Batches",
    "Normalization",
    "Standardization",
    "epoch_permutation",
    "fit_normalize",
    "fit_standardize",
    "normalize",
    "num_examples",
    "standardize",
]


def epoch_permutation(seed: Any, epoch: Any, size: int) -> jax.Array:
    """The shuffled order of ``size`` examples in ``epoch``, pure in ``(seed, epoch)``, jit-able."""
    key = jax.random.fold_in(jax.random.key(seed), epoch)
    return jax.random.permutation(key, size)


def num_examples(data: ArrayTree) -> int:
    """The shared leading dimension of every leaf; a clear error when they differ."""
    leaves = jax.tree_util.tree_flatten_with_path(data)[0]
    if not leaves:
        raise ValueError("data has no arrays; pass a pytree of arrays such as {'x': x, 'y': y}")
    sizes = {jax.tree_util.keystr(p): (np.shape(x)[0] if np.ndim(x) else None) for p, x in leaves}
    first = next(iter(sizes.values()))
    if first is None or any(s != first for s in sizes.values()):
        raise ValueError(
            f"every array in data must have the same leading (example) dimension, got {sizes}; "
            "pass arrays with one row per example"
        )
    return int(first)


@dataclasses.dataclass(frozen=True)
class Batches:
    """Minibatches of a pytree of arrays, reshuffled each epoch.

    Attributes:
      data: a pytree of arrays sharing their leading dimension (e.g. ``{"x": x, "y": y}``).
      batch_size: examples per batch, an integer >= 1.
      shuffle: draw a new order each epoch (from ``seed`` and the epoch number).
      seed: an integer seed for the order.
      drop_remainder: drop the last, smaller batch of each epoch.

    Example:
      >>> import numpy as np
      >>> batches = Batches({"x": np.arange(10)}, batch_size=4, seed=0)
      >>> len(batches), [b["x"].shape for b in batches.epoch(0)]
      (3, [(4,), (4,), (2,)])
    """

    data: ArrayTree
    batch_size: int
    shuffle: bool = True
    seed: int = 0
    drop_remainder: bool = False

    def __post_init__(self) -> None:
        check.integer("batch_size", self.batch_size, 1)
        check.boolean("shuffle", self.shuffle)
        check.integer("seed", self.seed, 0)
        check.boolean("drop_remainder", self.drop_remainder)
        size = num_examples(self.data)
        if self.drop_remainder and size < self.batch_size:
            raise ValueError(
                f"batch_size must be <= the number of examples ({size}) when "
                f"drop_remainder=True, got {self.batch_size}; pass a smaller batch_size"
            )

    @property
    def size(self) -> int:
        """Number of examples."""
        return num_examples(self.data)

    def __len__(self) -> int:
        """Number of batches per epoch."""
        full, rest = divmod(self.size, self.batch_size)
        return full + (rest > 0 and not self.drop_remainder)

    def order(self, epoch: int) -> np.ndarray:
        """Indices of the examples in the order epoch ``epoch`` visits them."""
        if not self.shuffle:
            return np.arange(self.size)
        return np.asarray(epoch_permutation(self.seed, epoch, self.size))

    def epoch(self, epoch: int, start: int = 0) -> Iterator[ArrayTree]:
        """The batches of ``epoch``, from batch number ``start`` on (to resume mid-epoch)."""
        order, arrays = self.order(epoch), jax.tree.map(np.asarray, self.data)
        for i in range(start, len(self)):
            yield take_batches(arrays, order, i, 1, self.batch_size)


def take_batches(data: ArrayTree, order: Any, first: int, count: int, batch_size: int) -> Any:
    """Batches ``first`` to ``first + count`` of the examples of ``data`` in ``order``, in
    one gather: one batch (the last may be shorter) when ``count`` is 1, else a stack of
    ``count`` full batches on a new leading axis. NumPy or ``jnp`` (inside ``jit``) alike.

    The one place a :class:`Batches` is cut: its epochs, ``fit``'s stacks of batches,
    evaluation in order and ``fit_compiled``'s epochs.
    """
    rows = order[first * batch_size : (first + count) * batch_size]
    shape = (count, batch_size) if count > 1 else (rows.shape[0],)
    return jax.tree.map(lambda x: x[rows].reshape(*shape, *x.shape[1:]), data)


class Standardization(NamedTuple):
    """Statistics fitted by :func:`fit_standardize`."""

    mean: jax.Array  # per feature, float
    scale: jax.Array  # per feature standard deviation; 1 where a feature is constant


class Normalization(NamedTuple):
    """Statistics fitted by :func:`fit_normalize`."""

    low: jax.Array  # per feature minimum
    scale: jax.Array  # per feature range (max - min); 1 where a feature is constant


def fit_standardize(x: Any, axis: int | tuple[int, ...] = 0) -> Standardization:
    """Fit zero-mean, unit-variance scaling on ``x`` (the train split); apply: :func:`standardize`.

    Constant features keep a scale of 1, as scikit-learn's ``StandardScaler`` does.
    """
    x = jnp.asarray(x, jnp.result_type(float))
    std = jnp.std(x, axis=axis)
    return Standardization(jnp.mean(x, axis=axis), jnp.where(std > 0, std, 1.0))


def standardize(x: Any, stats: Standardization) -> jax.Array:
    r""":math:`(x - \mu) / \sigma` with statistics from :func:`fit_standardize`."""
    return (jnp.asarray(x, stats.mean.dtype) - stats.mean) / stats.scale


def fit_normalize(x: Any, axis: int | tuple[int, ...] = 0) -> Normalization:
    """Fit min-max scaling to [0, 1] on ``x`` (the train split); apply with :func:`normalize`."""
    x = jnp.asarray(x, jnp.result_type(float))
    low, high = jnp.min(x, axis=axis), jnp.max(x, axis=axis)
    return Normalization(low, jnp.where(high > low, high - low, 1.0))


def normalize(x: Any, stats: Normalization) -> jax.Array:
    r""":math:`(x - \min) / (\max - \min)` with statistics from :func:`fit_normalize`."""
    return (jnp.asarray(x, stats.low.dtype) - stats.low) / stats.scale
