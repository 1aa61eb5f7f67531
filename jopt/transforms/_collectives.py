"""Collectives as transforms: gradients reduced over a named mapped axis (``shard_map``/``pmap``).

Under ``jax.jit`` with sharded arrays XLA inserts the reductions itself; a step written per
device needs them spelled out, and as a transform the reduction stands first in a chain.
"""

from __future__ import annotations

from typing import Literal

import jax

from jopt import _check
from jopt.base import GradientTransformation, stateless


def all_reduce_gradients(
    axis_name: str, reduce: Literal["mean", "sum"] = "mean"
) -> GradientTransformation:
    r"""Average (or sum) the updates over a named mapped axis: :math:`u = \frac1n\sum_i g_i`.

    For steps written per device with ``jax.shard_map`` or ``jax.pmap``, where each
    device differentiates the loss on its own part of the batch; put it first in
    the chain, e.g. ``jopt.chain(jopt.all_reduce_gradients("data"), jopt.adamw(1e-3))``.
    With equal parts and a mean loss, ``"mean"`` gives the global batch's gradient.

    Use it where gradients are per device: ``jax.pmap`` and ``jax.shard_map(...,
    check_vma=False)``. Do not use it under ``jax.jit`` with sharded arrays (XLA
    inserts the reduction itself), nor under ``shard_map`` with ``check_vma=True``,
    where JAX already *sums* the gradients of replicated params over the axis.

    Also reachable as ``jopt.train.sharding.all_reduce_gradients``.

    Args:
      axis_name: the mapped axis to reduce over (as named in the mesh or ``pmap``).
      reduce: ``"mean"`` or ``"sum"``.

    References:
      Goyal et al., `Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour
      <https://arxiv.org/abs/1706.02677>`_, 2017 (synchronous data-parallel SGD: the
      per-worker gradients are all-reduced before the update).
    """
    if not isinstance(axis_name, str):
        raise TypeError(
            f"axis_name must be a mesh axis name (a string), got {axis_name!r}; "
            "pass the name the mesh or pmap gives the axis, e.g. 'data'"
        )
    _check.one_of("reduce", reduce, ("mean", "sum"))
    collective = jax.lax.pmean if reduce == "mean" else jax.lax.psum
    return stateless(lambda updates, params: collective(updates, axis_name))
