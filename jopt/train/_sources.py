"""Where :func:`~jopt.train.fit` gets its batches: any data source, moved to the device ahead.

``fit`` takes, for ``train_data``:

- a :class:`~jopt.train.Batches` (arrays in memory; the order is a pure function of
  ``(seed, epoch)``, so a resumed run sees exactly the batches it would have);
- any re-iterable of batches: a list, a grain ``MapDataset``/``IterDataset``/``DataLoader``
  (each epoch calls ``iter()`` again);
- a callable ``epoch -> iterable`` (generators, tf.data/TFDS numpy iterators, anything
  that must be rebuilt per epoch).

On a mid-epoch resume, an iterator with grain's ``get_state``/``set_state`` continues
from its saved state; other sources are rebuilt for the epoch and the batches already
trained on are skipped, which continues the same order only if the source yields the
same batches each time it is built for that epoch.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from jopt.train.data import Batches, take_batches


def check_source(name: str, data: Any) -> None:
    """Batches, a re-iterable, or a callable ``epoch -> iterable``; one-shot iterators refused."""
    if isinstance(data, Batches) or callable(data):
        return
    if isinstance(data, Iterator):
        raise TypeError(
            f"{name} must be re-iterable (each epoch starts it again), got a one-shot "
            f"{type(data).__name__}; pass a list or a dataset, or a function "
            "epoch -> iterable such as lambda epoch: make_batches(epoch)"
        )
    if not isinstance(data, Iterable) or isinstance(data, (str, bytes, dict)):
        raise TypeError(
            f"{name} must be a jopt.train.Batches, a re-iterable of batches (a list, a grain "
            f"dataset) or a function epoch -> iterable, got {type(data).__name__}; e.g. "
            "Batches({'x': x, 'y': y}, batch_size=32, seed=0)"
        )


def steps_per_epoch(data: Any) -> int | None:
    """The number of batches an epoch has, when the source knows it."""
    if callable(data) and not isinstance(data, Batches):
        return None
    try:
        return len(data)
    except TypeError:
        return None


def epoch_items(data: Any, epoch: int, start: int, state: Any, size: int) -> Iterator[tuple]:
    """``(count, batches, resume_state)`` of ``epoch`` from batch ``start`` on: runs of
    ``size`` batches of one structure and shape stacked on a new leading axis (``count``
    is ``size``), and the rest one by one (``count`` is 1, the batch as it came).

    ``resume_state`` is what a checkpoint taken after the item needs to continue the
    source exactly (grain's iterator state), or None; ``state`` is such a saved state.
    """
    if isinstance(data, Batches):
        yield from _batches_items(data, epoch, start, size)
        return
    iterator = iter(data(epoch) if callable(data) else data)
    get_state = getattr(iterator, "get_state", None)
    if state is not None and hasattr(iterator, "set_state"):
        iterator.set_state(state)
    else:
        iterator = itertools.islice(iterator, start, None)
    group: list[tuple] = []  # (batch, resume_state) pairs not yet yielded
    group_signature = None  # the structure and shapes the group's batches share
    for batch in iterator:
        signature = _signature(batch)
        if group and signature != group_signature:
            yield from ((1, b, r) for b, r in group)
            group = []
        group_signature = signature
        group.append((batch, get_state() if callable(get_state) else None))
        if len(group) == size:
            yield size, _stack([b for b, _ in group]), group[-1][1]
            group = []
    yield from ((1, b, r) for b, r in group)


def _batches_items(data: Batches, epoch: int, start: int, size: int) -> Iterator[tuple]:
    # A stack is one gather of size * batch_size examples: the same batches, taken at once.
    order, batch_size, batches = data.order(epoch), data.batch_size, len(data)
    arrays = jax.tree.map(np.asarray, data.data)
    full_batches = data.size // batch_size
    index = start
    while index < batches:
        count = size if size > 1 and index + size <= full_batches else 1
        yield count, take_batches(arrays, order, index, count, batch_size), None
        index += count


def _signature(batch: Any) -> tuple:
    leaves, structure = jax.tree.flatten(batch)
    return structure, tuple((np.shape(x), jnp.result_type(x)) for x in leaves)


def _stack(batches: list[Any]) -> Any:
    # NumPy batches stack on the host (the copy to the device is then one transfer);
    # batches already on a device stack there.
    def stack(*leaves):
        return jnp.stack(leaves) if isinstance(leaves[0], jax.Array) else np.stack(leaves)

    return jax.tree.map(stack, *batches)


def stacked_sharding(sharding: Any) -> Any:
    """The sharding of a stack of batches, given a batch's (a pytree of them, or None):
    the stacking axis is not split. None when one of them cannot say so."""
    if sharding is None:
        return None
    leaves, structure = jax.tree.flatten(sharding, is_leaf=_is_sharding)
    stacked = [_stacked(s) for s in leaves]
    return None if None in stacked else jax.tree.unflatten(structure, stacked)


def _stacked(sharding: Any) -> Any:
    if isinstance(sharding, NamedSharding):
        return NamedSharding(sharding.mesh, PartitionSpec(None, *sharding.spec))
    if _is_sharding(sharding) and sharding.is_fully_replicated:  # e.g. one device
        return sharding
    return None


def _is_sharding(x: Any) -> bool:
    return isinstance(x, jax.sharding.Sharding)


def prefetch(
    items: Iterable[tuple], shardings: tuple = (None, None), depth: int = 2
) -> Iterator[tuple]:
    """Put the next ``depth`` items of :func:`stacks` (``(count, batches, resume_state)``)
    on the device ahead of use, a single batch with ``shardings[0]`` and a stack with
    ``shardings[1]`` when given.

    ``jax.device_put`` is asynchronous, so copying item ``i + 1`` overlaps step ``i``.
    On a CPU with no sharding there is nothing to overlap (the "device" is host memory and
    the step copies its NumPy input itself), so batches pass through unchanged there.
    """
    if shardings[0] is None and jax.default_backend() == "cpu":
        yield from items
        return

    def put(count: int, batch: Any) -> Any:
        sharding = shardings[0] if count == 1 else shardings[1]
        return jax.device_put(batch) if sharding is None else jax.device_put(batch, sharding)

    queue: collections.deque = collections.deque()
    for count, batch, resume_state in items:
        queue.append((count, put(count, batch), resume_state))
        if len(queue) > depth:
            yield queue.popleft()
    while queue:
        yield queue.popleft()
