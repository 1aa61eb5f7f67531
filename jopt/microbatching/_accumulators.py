"""How the results of the microbatches combine into one (:class:`Accumulator`)."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Accumulator:
    """Combines the values :math:`x_0, \\dots, x_{n-1}` of ``n`` microbatches into one.

    The sequential program is ``c = init(shape of x_0)``, then
    ``c = update(c, x_i, i)`` for each ``i``, and finally ``finalize(c)``;
    ``aggregate(xs)`` does the same for values stacked on a leading axis (used inside
    one vmapped microbatch by :func:`micro_vmap`).

    Attributes:
      init: ``init(value_shape) -> carry``, from a ``jax.ShapeDtypeStruct`` tree.
      update: ``update(carry, value, index) -> carry``.
      finalize: ``finalize(carry) -> result``.
      aggregate: ``aggregate(stacked_values) -> value``.
    """

    init: Callable[[Any], Any]
    update: Callable[[Any, Any, Any], Any]
    finalize: Callable[[Any], Any]
    aggregate: Callable[[Any], Any]


class AccumulationType(enum.Enum):
    """The built-in ways to combine the microbatches' values."""

    MEAN = enum.auto()
    """The mean over the microbatches (floating values)."""
    SUM = enum.auto()
    """The sum over the microbatches."""
    RUNNING_MEAN = enum.auto()
    """The mean over the microbatches actually run (``num_real_microbatches``)."""
    CONCAT = enum.auto()
    """The values concatenated along axis 0, in the batch's original order."""


def _leafwise(acc: Accumulator) -> Accumulator:
    """An accumulator of arrays applied to every leaf of a tree."""
    return Accumulator(
        init=lambda value: jax.tree.map(acc.init, value),
        update=lambda carry, value, i: jax.tree.map(lambda c, v: acc.update(c, v, i), carry, value),
        finalize=lambda carry: jax.tree.map(acc.finalize, carry),
        aggregate=lambda values: jax.tree.map(acc.aggregate, values),
    )


def _floating_zeros(value: Any) -> jax.Array:
    if not jnp.issubdtype(value.dtype, jnp.floating):
        raise ValueError(
            f"MEAN and RUNNING_MEAN accumulators need floating values, got {value.dtype}; "
            "use AccumulationType.SUM for integers"
        )
    return jnp.zeros(value.shape, value.dtype)


def _zeros(value: Any) -> jax.Array:
    return jnp.zeros(value.shape, value.dtype)


def _positive(num_microbatches: int) -> None:
    if num_microbatches <= 0:
        raise ValueError(f"num_microbatches must be > 0, got {num_microbatches}")


def _built_in(kind: AccumulationType, num_microbatches: int) -> Accumulator:
    add = lambda carry, value, _: carry + value  # noqa: E731
    if kind is AccumulationType.SUM:
        return Accumulator(_zeros, add, lambda c: c, lambda xs: jnp.sum(xs, axis=0))
    if kind is AccumulationType.MEAN:
        _positive(num_microbatches)
        mean = lambda c: c / num_microbatches  # noqa: E731
        return Accumulator(_floating_zeros, add, mean, lambda xs: jnp.mean(xs, axis=0))
    if kind is AccumulationType.RUNNING_MEAN:
        # After i + 1 values: c_i = c_{i-1} * i / (i + 1) + x_i / (i + 1).
        def running(carry, value, i):
            kept = i / (i + 1)
            return carry * kept + value * (1 - kept)

        return Accumulator(_floating_zeros, running, lambda c: c, lambda xs: jnp.mean(xs, axis=0))
    _positive(num_microbatches)

    def stack(value):
        return jnp.zeros((num_microbatches, *value.shape), value.dtype)

    def unstack(carry):
        # Microbatch k holds rows k, k + n, k + 2n ... (see reshape_batch_axis), so the
        # column-major reshape puts every row back in its place.
        return carry.reshape(-1, *carry.shape[2:], order="F")

    return Accumulator(stack, lambda c, v, i: c.at[i].set(v), unstack, lambda xs: xs)


def resolve(accumulator: Any, num_microbatches: int) -> Accumulator:
    """One accumulator for a tree of outputs, from an accumulator, a type, or a prefix
    tree of them (each applying to the outputs' subtree at its place)."""

    def one(acc):
        if isinstance(acc, Accumulator):
            return acc
        if isinstance(acc, AccumulationType):
            return _leafwise(_built_in(acc, num_microbatches))
        raise ValueError(
            f"accumulator must be an Accumulator or an AccumulationType, got {acc!r}; "
            "pass e.g. AccumulationType.SUM"
        )

    tree = jax.tree.map(one, accumulator)

    def over(method):
        return lambda *trees: jax.tree.map(lambda acc, *xs: getattr(acc, method)(*xs), tree, *trees)

    def update(carry, value, index):
        return jax.tree.map(lambda acc, c, v: acc.update(c, v, index), tree, carry, value)

    return Accumulator(over("init"), update, over("finalize"), over("aggregate"))
