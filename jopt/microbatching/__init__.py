"""Microbatching (``jopt.microbatching``), as in ``optax.microbatching``: evaluate a function
(a loss, a vmap, per-example gradients) on slices of a batch in sequence, combining the
results, so that memory is bounded by one slice."""

from jopt.microbatching._accumulators import AccumulationType, Accumulator
from jopt.microbatching._microbatch import micro_grad, micro_vmap, microbatch, reshape_batch_axis

__all__ = [
    "AccumulationType",
    "Accumulator",
    "micro_grad",
    "micro_vmap",
    "microbatch",
    "reshape_batch_axis",
]
