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
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jax

from jopt.train.data import Batches


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


def epoch_batches(data: Any, epoch: int, start: int, state: Any = None) -> Iterator[tuple]:
    """``(batch, resume_state)`` pairs of ``epoch`` from batch ``start`` on.

    ``resume_state`` is what a checkpoint taken after that batch needs to continue the
    source exactly (grain's iterator state), or None; ``state`` is such a saved state.
    """
    if isinstance(data, Batches):
        yield from ((batch, None) for batch in data.epoch(epoch, start))
        return
    iterator = iter(data(epoch) if callable(data) else data)
    get_state = getattr(iterator, "get_state", None)
    if state is not None and hasattr(iterator, "set_state"):
        iterator.set_state(state)
    else:
        iterator = itertools.islice(iterator, start, None)
    for batch in iterator:
        yield batch, (get_state() if callable(get_state) else None)


def prefetch(pairs: Iterable[tuple], sharding: Any = None, depth: int = 2) -> Iterator[tuple]:
    """Put the next ``depth`` batches of ``(batch, resume_state)`` pairs on the device (with
    ``sharding`` when given) ahead of use.

    ``jax.device_put`` is asynchronous, so copying batch ``i + 1`` overlaps step ``i``.
    On a CPU with no sharding there is nothing to overlap (the "device" is host memory and
    the step copies its NumPy input itself), so batches pass through unchanged there.
    """
    if sharding is None and jax.default_backend() == "cpu":
        yield from pairs
        return
    put: Callable[[Any], Any] = (
        jax.device_put if sharding is None else lambda b: jax.device_put(b, sharding)
    )
    queue: collections.deque = collections.deque()
    for batch, resume_state in pairs:
        queue.append((put(batch), resume_state))
        if len(queue) > depth:
            yield queue.popleft()
    while queue:
        yield queue.popleft()
