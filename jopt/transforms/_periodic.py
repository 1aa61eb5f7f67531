"""Apply accumulated updates only every k steps (:func:`apply_every`)."""

from __future__ import annotations

from typing import NamedTuple

import jax

from jopt import _check, tree
from jopt.base import GradientTransformation, Updates
from jopt.schedules._hyper import zero_count


class ApplyEvery(NamedTuple):
    """State of :func:`apply_every` (optax's name for it)."""

    count: jax.Array  # int32 scalar, steps seen modulo k
    grad_acc: Updates  # running sum of the updates since the last emission, like params


def apply_every(k: int = 1) -> GradientTransformation:
    r"""Sum updates over ``k`` steps and emit the sum every ``k``-th step, zeros otherwise.

    .. math::  a_t = g_t + [t \bmod k \ne 0]\,a_{t-1}, \qquad
               u_t = [t \bmod k = k-1]\,a_t

    Transforms before it in a chain still update their state every step; for true
    gradient accumulation (the inner optimizer sees the mean) use :class:`jopt.MultiSteps`.

    Args:
      k: period, an integer >= 1.
    """
    _check.integer("k", k, minimum=1, fix="pass the number of steps to accumulate, e.g. 4")

    def init(params):
        return ApplyEvery(count=zero_count(), grad_acc=tree.zeros_like(params))

    def update(updates, state, params=None):
        del params
        phase = state.count % k
        grad_acc = jax.tree.map(lambda g, a: (phase != 0) * a + g, updates, state.grad_acc)
        emitted = jax.tree.map(lambda a: (phase == k - 1) * a, grad_acc)
        return emitted, ApplyEvery(tree.safe_increment(state.count) % k, grad_acc)

    return GradientTransformation(init, update)
