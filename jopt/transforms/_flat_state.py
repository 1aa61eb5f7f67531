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
from jopt._flat_tree import DEFAULT_MAX_LEAF_SIZE, FlatLayout
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


def flat_state(
    inner: GradientTransformation, max_leaf_size: int = DEFAULT_MAX_LEAF_SIZE
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
      >>> sorted(state.inner_state[0].mu)
      ['flat/float32']
    """
    _check.transformation("inner", inner)
    _check.integer("max_leaf_size", max_leaf_size, minimum=0)
    inner = with_extra_args_support(inner)

    def init(params):
        return FlatStateState(inner.init(FlatLayout.of(params, max_leaf_size).gather(params)))

    def update(updates, state, params=None, **extra_args):
        layout = FlatLayout.of(updates, max_leaf_size)
        flat_params = None if params is None else layout.gather(params)
        if "grad" in extra_args:
            extra_args["grad"] = layout.gather(extra_args["grad"])
        flat_updates, inner_state = inner.update(
            layout.gather(updates), state.inner_state, flat_params, **extra_args
        )
        return layout.scatter(flat_updates), FlatStateState(inner_state)

    return GradientTransformationExtraArgs(init, update)
