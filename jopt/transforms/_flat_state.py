"""A drop-in update path: small leaves' optimizer state kept in a few flat, dtype-grouped buffers.

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

from typing import NamedTuple

from jopt import _check
from jopt._flat._capability import check_flat
from jopt._flat._tree import DEFAULT_MAX_LEAF_SIZE, FlatLayout, FlatTree
from jopt.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    OptState,
    with_extra_args_support,
)


class FlatStateState(NamedTuple):
    """State of :func:`flat_state`."""

    # The inner transform's state over a FlatTree of the params: {"flat/<dtype>": 1-D
    # buffer of the small leaves, "leaf/<index>": each large leaf as it is}.
    inner_state: OptState


def flat_state(
    inner: GradientTransformation, max_leaf_size: int = DEFAULT_MAX_LEAF_SIZE
) -> GradientTransformationExtraArgs:
    r"""Run ``inner`` on flat, dtype-grouped buffers of the small leaves instead of leaf by leaf.

    Leaves of at most ``max_leaf_size`` elements are concatenated, per dtype, into one
    buffer; larger leaves are handed to ``inner`` unchanged. The result equals running
    ``inner`` leaf by leaf (up to float rounding of XLA's vectorisation) when ``inner`` is
    one a :class:`jopt.FlatTree` runs (the inner transform receives a FlatTree of the
    params): elementwise transforms, global reductions (up to summation order) and
    per-leaf ones such as lamb, lars and block clipping; ``init`` refuses, by name,
    transforms that need leaf shapes (adafactor, sm3, muon) and unknown ones. It is
    :class:`jopt.FlatTree` applied to the update alone, a single-device path:
    concatenating sharded leaves would gather them.

    Params and gradients stay one array per leaf (the contract), so every step still
    gathers the gradients and scatters the updates leaf by leaf; measure before adopting
    it. Where the parameters can stay flat for the whole of training,
    :class:`jopt.FlatTree` removes both copies and is the faster path.

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
      >>> sorted(state.inner_state[0].mu.buffers)
      ['flat/float32']
    """
    _check.transformation("inner", inner)
    _check.integer("max_leaf_size", max_leaf_size, minimum=0)
    inner = with_extra_args_support(inner)

    def init(params):
        flat = FlatTree.from_tree(params, max_leaf_size)
        check_flat("flat_state", [inner], flat)
        return FlatStateState(inner.init(flat))

    def update(updates, state, params=None, **extra_args):
        layout = FlatLayout.of(updates, max_leaf_size)

        def gather(tree):
            return FlatTree(layout.gather(tree), layout)

        flat_params = None if params is None else gather(params)
        if "grad" in extra_args:
            extra_args["grad"] = gather(extra_args["grad"])
        flat_updates, inner_state = inner.update(
            gather(updates), state.inner_state, flat_params, **extra_args
        )
        return layout.scatter(flat_updates.buffers), FlatStateState(inner_state)

    return GradientTransformationExtraArgs(init, update)
