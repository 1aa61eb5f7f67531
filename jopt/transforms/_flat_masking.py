"""Masks chosen by leaf (:func:`jopt.masked`, weight-decay masks) on a :class:`~jopt.FlatTree`.

A mask names leaves of the model's tree; a FlatTree packs them into shared buffers.
The mask is resolved on :meth:`~jopt.FlatTree.to_tree` (so a mask function sees the
leaves it was written for) and spread over the buffers as a static element mask. The
inner transform then runs on whole buffers whose masked-out elements are zero, and
its result is kept only where the mask is True: for elementwise, per-leaf and summing
inner transforms this is the result of running it on the selected leaves alone (a
zero adds nothing to a sum; a masked-out leaf's per-leaf result is discarded).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jopt._flat._tree import FlatTree


def element_mask(resolved: Any, flat: FlatTree) -> dict[str, np.ndarray]:
    """The static element mask of ``flat``'s buffers for a mask (prefix) tree of its leaves."""
    full = jax.tree.map(
        lambda m, sub: jax.tree.map(lambda _: bool(m), sub), resolved, flat.to_tree()
    )
    return flat.layout.expand(flat.layout.treedef.flatten_up_to(full))


def _select(keep: dict[str, np.ndarray], flat: FlatTree) -> FlatTree:
    return FlatTree(
        {k: v if keep[k].all() else jnp.where(keep[k], v, 0) for k, v in flat.buffers.items()},
        flat.layout,
    )


def masked_flat_update(
    inner: Any,
    keep: dict[str, np.ndarray],
    updates: FlatTree,
    inner_state: Any,
    params: FlatTree | None,
    extra_args: dict[str, Any],
    mask_extra_args: bool,
) -> tuple[FlatTree, Any]:
    """``inner`` applied where ``keep`` is True; other elements of ``updates`` pass through."""
    if mask_extra_args:
        extra_args = {
            k: _select(keep, v) if isinstance(v, FlatTree) and v.layout == updates.layout else v
            for k, v in extra_args.items()
        }
    new, inner_state = inner.update(
        _select(keep, updates),
        inner_state,
        None if params is None else _select(keep, params),
        **extra_args,
    )
    merged = {
        k: v if keep[k].all() else jnp.where(keep[k], v, updates.buffers[k])
        for k, v in new.buffers.items()
    }
    return FlatTree(merged, updates.layout), inner_state
