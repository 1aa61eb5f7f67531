"""A pytree kept as a few flat, dtype-grouped buffers, and the layout that maps it back.

On trees of many small leaves (the norms and biases of a deep model) an optimizer
step is overhead-bound: every leaf costs its own kernels and its own argument
buffers. :class:`FlatTree` holds the small leaves of each dtype in one 1-D buffer
for the whole of training: the parameters are flattened once, the loss reads them
through :meth:`FlatTree.to_tree` (whose gradient is a single concatenation), and
an elementwise optimizer then updates each buffer in one fused kernel.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jopt import _check

DEFAULT_MAX_LEAF_SIZE = 2**16
"""Leaves with more elements keep a buffer of their own: their kernel is already
memory-bound, and copying them into a shared buffer would cost more than it saves."""


@dataclasses.dataclass(frozen=True)
class FlatLayout:
    """Where each leaf of a tree lives: its buffer key, its offset there (None: a buffer
    of its own), its shape and dtype. Hashable, so it can be static pytree metadata.

    The one description of flattening in jopt: :class:`FlatTree`, :func:`jopt.flat_state`
    and :func:`jopt.flatten` (:meth:`of` with ``one_vector``) all pack with it."""

    treedef: Any
    keys: tuple[str, ...]
    offsets: tuple[int | None, ...]
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, tree: Any, max_leaf_size: int = DEFAULT_MAX_LEAF_SIZE, *, one_vector: bool = False
    ) -> FlatLayout:
        """The layout of ``tree``: leaves of at most ``max_leaf_size`` elements are packed
        into one buffer per dtype (key ``"flat/<dtype>"``), largest first and leaves of
        equal size next to each other (in tree order among them), so that per-leaf
        reductions see a few ``(leaves, size)`` blocks (:meth:`runs`); larger leaves keep
        their own buffer (key ``"leaf/<index>"``). With ``one_vector``, every leaf goes, in
        tree order, into one buffer of the promoted dtype (optax's ``flatten``)."""
        leaves, treedef = jax.tree.flatten(tree)
        shapes = [tuple(jnp.shape(leaf)) for leaf in leaves]
        dtypes = [jnp.result_type(leaf).name for leaf in leaves]
        if one_vector:
            key = "flat/" + (jnp.result_type(*leaves).name if leaves else "float32")
            keys = [key] * len(leaves)
            order = list(range(len(leaves)))
        else:
            keys = [
                f"flat/{dtype}" if math.prod(shape) <= max_leaf_size else f"leaf/{index:06d}"
                for index, (shape, dtype) in enumerate(zip(shapes, dtypes, strict=True))
            ]
            order = sorted(range(len(leaves)), key=lambda i: -math.prod(shapes[i]))
        offsets: list[int | None] = [None] * len(leaves)
        ends: dict[str, int] = {}
        for index in order:
            if keys[index].startswith("flat/"):
                offsets[index] = ends.get(keys[index], 0)
                ends[keys[index]] = offsets[index] + math.prod(shapes[index])
        return cls(treedef, tuple(keys), tuple(offsets), tuple(shapes), tuple(dtypes))

    def _packed(self) -> dict[str, list[int]]:
        """For each flat buffer, the indices of its leaves in buffer order."""
        order: dict[str, list[int]] = {}
        for index in sorted(
            (i for i, o in enumerate(self.offsets) if o is not None), key=self.offsets.__getitem__
        ):
            order.setdefault(self.keys[index], []).append(index)
        return order

    def runs(self, key: str) -> tuple[tuple[int, int, int], ...]:
        """``(offset, leaves, size)`` of each block of equal-size leaves in buffer ``key``,
        in buffer order (a buffer of its own is one block of one leaf)."""
        if key.startswith("leaf/"):
            return ((0, 1, math.prod(self.shapes[int(key[5:])])),)
        blocks: list[list[int]] = []
        for index in self._packed()[key]:
            size = math.prod(self.shapes[index])
            if blocks and blocks[-1][2] == size:
                blocks[-1][1] += 1
            else:
                blocks.append([self.offsets[index], 1, size])
        return tuple(tuple(block) for block in blocks)

    def expand(self, per_leaf: list[Any]) -> dict[str, np.ndarray]:
        """Each leaf's value (``per_leaf``, in tree order) repeated over its elements, as
        static NumPy buffers of this layout (a buffer of its own gets a 0-d value)."""
        expanded = {
            key: np.concatenate([np.full(math.prod(self.shapes[i]), per_leaf[i]) for i in order])
            for key, order in self._packed().items()
        }
        for index, (key, offset) in enumerate(zip(self.keys, self.offsets, strict=True)):
            if offset is None:
                expanded[key] = np.asarray(per_leaf[index])
        return expanded

    def gather(self, tree: Any) -> dict[str, jax.Array]:
        """The buffers of ``tree`` (a tree of this layout's structure and shapes)."""
        leaves = self.treedef.flatten_up_to(tree)
        buffers = {
            key: jnp.concatenate([jnp.ravel(leaves[i]) for i in order])
            if len(order) > 1
            else jnp.ravel(leaves[order[0]])
            for key, order in self._packed().items()
        }
        for key, offset, leaf in zip(self.keys, self.offsets, leaves, strict=True):
            if offset is None:
                buffers[key] = leaf
        return dict(sorted(buffers.items()))

    def scatter(self, buffers: dict[str, jax.Array]) -> Any:
        """The tree whose buffers are ``buffers``: the inverse of :meth:`gather`.

        Each flat buffer is cut with one ``lax.split``, whose gradient is one
        concatenation (slicing leaf by leaf would differentiate into a sum of pads).
        """
        leaves: list[Any] = list(self.keys)
        for key, order in self._packed().items():
            sizes = [math.prod(self.shapes[i]) for i in order]
            for index, piece in zip(order, jax.lax.split(buffers[key], sizes), strict=True):
                # A one-vector layout promoted mixed dtypes: each leaf gets its own back.
                leaves[index] = piece.reshape(self.shapes[index]).astype(self.dtypes[index])
        for index, (key, offset) in enumerate(zip(self.keys, self.offsets, strict=True)):
            if offset is None:
                leaves[index] = buffers[key]
        return self.treedef.unflatten(leaves)


class FlatTree:
    r"""A pytree stored as a few flat, dtype-grouped buffers: the fast path for many small leaves.

    Build one with :meth:`from_tree`, hand it to the optimizer and to
    :class:`jopt.train.TrainState` in place of the parameters, and read the original
    tree with :meth:`to_tree` (the training steps of :mod:`jopt.train` do this for the
    loss and eval functions). Gradients, updates and optimizer state of a ``FlatTree``
    are ``FlatTree``\ s of the same layout, so an optimizer step touches a few large
    buffers instead of every leaf. Its leaves are the buffers, keyed ``"flat/<dtype>"``
    and ``"leaf/<index>"``; they jit, vmap, donate and checkpoint like any leaves.

    The update equals the per-leaf update (up to float rounding of XLA's vectorisation)
    for *elementwise* transforms (sgd, momentum, adam and its family, rmsprop, adagrad,
    lion, sign methods, weight decay, clipping by value, and up to summation order those
    that sum over all elements, such as ``clip_by_global_norm``), for *per-leaf* ones that
    reduce each leaf through the layout (lamb, lars, trust ratios, block norms,
    ``clip_by_block_rms``, novograd) and for masks and labels chosen by leaf (``masked``,
    ``partition``). Transforms that need leaf shapes (adafactor, sm3, muon) and those jopt
    does not know (yours, optax's; see :func:`jopt.declare_elementwise`) refuse a FlatTree
    at ``init`` with an error that names them. Concatenating sharded leaves gathers them, so it is a
    path for replicated or single-device parameters.

    Example:
      >>> import jax, jax.numpy as jnp, jopt
      >>> params = {"b": jnp.zeros(3), "s": jnp.ones(())}
      >>> flat = jopt.FlatTree.from_tree(params)
      >>> {k: v.shape for k, v in flat.buffers.items()}
      {'flat/float32': (4,)}
      >>> loss = lambda flat: jnp.sum(flat.to_tree()["b"] * flat.to_tree()["s"])
      >>> jax.grad(loss)(flat).buffers["flat/float32"].tolist()
      [1.0, 1.0, 1.0, 0.0]
    """

    __slots__ = ("buffers", "layout")

    def __init__(self, buffers: dict[str, Any], layout: FlatLayout):
        # Not validated: jax rebuilds FlatTrees with placeholders and shardings as leaves.
        self.buffers = buffers
        self.layout = layout

    @classmethod
    def from_tree(cls, tree: Any, max_leaf_size: int = DEFAULT_MAX_LEAF_SIZE) -> FlatTree:
        """Pack ``tree``'s leaves of at most ``max_leaf_size`` elements into one buffer per dtype
        (largest first, leaves of equal size together).

        Args:
          tree: a pytree of arrays (or scalars).
          max_leaf_size: leaves with more elements keep a buffer of their own, an
            integer >= 0 (default 65,536: above it a leaf's kernel is memory-bound and a
            copy costs more than the overhead it saves).

        Returns:
          The :class:`FlatTree` holding ``tree``'s values.
        """
        _check.integer("max_leaf_size", max_leaf_size, minimum=0)
        tree = jax.tree.map(jnp.asarray, tree)
        layout = FlatLayout.of(tree, max_leaf_size)
        return cls(layout.gather(tree), layout)

    def to_tree(self) -> Any:
        """The tree this was built from (under ``jit`` its leaves are slices of the buffers)."""
        return self.layout.scatter(self.buffers)

    def __repr__(self) -> str:
        shapes = {k: getattr(v, "shape", v) for k, v in self.buffers.items()}
        return f"FlatTree({len(self.layout.keys)} leaves in {shapes})"


def _flatten(flat: FlatTree):
    keys = tuple(sorted(flat.buffers))
    return [flat.buffers[k] for k in keys], (keys, flat.layout)


def _flatten_with_keys(flat: FlatTree):
    children, aux = _flatten(flat)
    return [(jax.tree_util.DictKey(k), c) for k, c in zip(aux[0], children, strict=True)], aux


def _unflatten(aux, children) -> FlatTree:
    keys, layout = aux
    return FlatTree(dict(zip(keys, children, strict=True)), layout)


jax.tree_util.register_pytree_with_keys(FlatTree, _flatten_with_keys, _unflatten, _flatten)


def model_params(params: Any) -> Any:
    """``params.to_tree()`` for a :class:`FlatTree`, else ``params`` itself."""
    return params.to_tree() if isinstance(params, FlatTree) else params
