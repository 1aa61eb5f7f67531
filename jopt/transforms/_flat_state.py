"""The fast update path: small leaves' optimizer state kept in a few flat, dtype-grouped buffers.

On trees of many small leaves an update is overhead-bound: every leaf costs its
own kernels. :func:`flat_state` gathers the small leaves of each dtype into one
flat buffer *once* at ``init`` for the state, and per step only gathers the
incoming gradients and scatters the outgoing updates, so the inner transform runs
as a handful of large fused kernels. Large leaves are already memory-bound and
would only pay for the copies, so they stay as they are. Unlike ``optax.flatten``
the state is never re-flattened, and params are gathered only when the inner
transform reads them (under ``jit`` an unused gather is removed by XLA).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check
from jopt.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    OptState,
    with_extra_args_support,
)


class FlatStateState(NamedTuple):
    """State of :func:`flat_state`."""

    # The inner transform's state over {"flat/<dtype>": 1-D buffer of the small leaves,
    # "leaf/<index>": each large leaf as it is}.
    inner_state: OptState


@dataclasses.dataclass(frozen=True)
class _Layout:
    """Where each leaf lives: its buffer key, offset in it (None: a leaf of its own), shape."""

    treedef: Any
    keys: tuple[str, ...]
    offsets: tuple[int | None, ...]
    shapes: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, tree: Any, max_leaf_size: int) -> _Layout:
        leaves, treedef = jax.tree.flatten(tree)
        keys, offsets, shapes, ends = [], [], [], {}
        for index, leaf in enumerate(leaves):
            size = math.prod(leaf.shape)
            if size > max_leaf_size:
                key, offset = f"leaf/{index:06d}", None
            else:
                key = f"flat/{jnp.dtype(leaf.dtype).name}"
                offset = ends.get(key, 0)
                ends[key] = offset + size
            keys.append(key)
            offsets.append(offset)
            shapes.append(tuple(leaf.shape))
        return cls(treedef, tuple(keys), tuple(offsets), tuple(shapes))

    def gather(self, tree: Any) -> dict[str, jax.Array]:
        leaves = self.treedef.flatten_up_to(tree)
        buffers: dict[str, list[jax.Array]] = {}
        for key, offset, leaf in zip(self.keys, self.offsets, leaves, strict=True):
            buffers.setdefault(key, []).append(leaf if offset is None else jnp.ravel(leaf))
        return {k: v[0] if len(v) == 1 else jnp.concatenate(v) for k, v in buffers.items()}

    def scatter(self, buffers: dict[str, jax.Array]) -> Any:
        leaves = []
        for key, offset, shape in zip(self.keys, self.offsets, self.shapes, strict=True):
            if offset is None:
                leaves.append(buffers[key])
            else:
                piece = jax.lax.slice_in_dim(buffers[key], offset, offset + math.prod(shape))
                leaves.append(piece.reshape(shape))
        return self.treedef.unflatten(leaves)


def flat_state(
    inner: GradientTransformation, max_leaf_size: int = 2**16
) -> GradientTransformationExtraArgs:
    r"""Run ``inner`` on flat, dtype-grouped buffers of the small leaves instead of leaf by leaf.

    Leaves of at most ``max_leaf_size`` elements are concatenated, per dtype, into one
    buffer; larger leaves are handed to ``inner`` unchanged. The result equals running
    ``inner`` leaf by leaf (up to float rounding of XLA's vectorisation) when ``inner`` is
    elementwise: sgd, momentum, adam and its family, rmsprop, adagrad, lion, sign methods,
    weight decay, clipping by value; and up to summation order with global reductions
    (``clip_by_global_norm``). Do *not* wrap transforms that look at leaf shapes
    (adafactor, lamb, lars, trust ratios, block norms, muon): on a flat buffer they see
    one block instead of the layers. It is a single-device path: concatenating sharded
    leaves would gather them.

    Args:
      inner: the transform to run on the buffers.
      max_leaf_size: leaves with more elements keep their own buffer, an integer >= 0
        (default 65,536: above it a leaf's kernel is memory-bound and a copy costs more
        than the overhead it saves).

    Returns:
      A transform with the same updates as ``inner`` whose state holds one flat buffer
      per dtype for the small leaves.

    Example:
      >>> import jax.numpy as jnp, jopt
      >>> tx = jopt.flat_state(jopt.adam(1e-3))
      >>> state = tx.init({"b": jnp.zeros(3), "s": jnp.zeros(())})
      >>> sorted(state.inner_state[0].mu)
      ['flat/float32']
    """
    _check.integer("max_leaf_size", max_leaf_size, minimum=0)
    inner = with_extra_args_support(inner)

    def init(params):
        return FlatStateState(inner.init(_Layout.of(params, max_leaf_size).gather(params)))

    def update(updates, state, params=None, **extra_args):
        layout = _Layout.of(updates, max_leaf_size)
        flat_params = None if params is None else layout.gather(params)
        if "grad" in extra_args:
            extra_args["grad"] = layout.gather(extra_args["grad"])
        flat_updates, inner_state = inner.update(
            layout.gather(updates), state.inner_state, flat_params, **extra_args
        )
        return layout.scatter(flat_updates), FlatStateState(inner_state)

    return GradientTransformationExtraArgs(init, update)
