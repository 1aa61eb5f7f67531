r"""Reduce the step size when a monitored value stops improving (reduce on plateau)."""

from __future__ import annotations

from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree
from jopt.base import GradientTransformationExtraArgs, Params, Updates
from jopt.schedules._hyper import zero_count


class ReduceLROnPlateauState(NamedTuple):
    """State of :func:`reduce_on_plateau` (fields and order as in optax)."""

    scale: jax.Array  # scalar, lowest float dtype of the params: the factor on the updates
    best_value: jax.Array  # scalar, highest dtype of the params: best average seen (+-inf first)
    plateau_count: jax.Array  # int32 scalar, evaluations since the last improvement
    cooldown_count: jax.Array  # int32 scalar, evaluations left before counting again
    count: jax.Array  # int32 scalar, values accumulated towards the next evaluation
    avg_value: jax.Array  # scalar, highest dtype of the params: running mean of those values


def reduce_on_plateau(
    factor: float = 0.1,
    patience: jax.typing.ArrayLike = 10,
    rtol: float = 1e-4,
    atol: float = 0.0,
    cooldown: jax.typing.ArrayLike = 0,
    accumulation_size: jax.typing.ArrayLike = 1,
    min_scale: jax.typing.ArrayLike = 0.0,
    mode: Literal["min", "max"] = "min",
) -> GradientTransformationExtraArgs:
    r"""Multiply updates by a scale that shrinks by ``factor`` when the metric plateaus.

    ``update`` reads the monitored ``value`` (a keyword argument, e.g. the loss). Every
    ``accumulation_size`` calls, the mean :math:`\bar v` of the values is evaluated:
    it improves on the best :math:`b` when (for ``mode="min"``)

    .. math::  \bar v < (1 - \text{rtol})\, b - \text{atol}

    and for ``mode="max"`` when :math:`-\bar v < -(1 - \text{rtol})\, b - \text{atol}`.
    After ``patience`` evaluations in a row without improvement,
    :math:`s \leftarrow \max(s\,\text{factor}, \text{min\_scale})` and the next
    ``cooldown`` evaluations do not count. Updates become :math:`u_t = s\, g_t`.

    Args:
      factor: the scale's multiplier on a plateau, in (0, 1). Default 0.1.
      patience: evaluations without improvement before reducing, an integer >= 1. Default 10.
      rtol: relative improvement needed, in [0, 1]. Default 1e-4.
      atol: absolute improvement needed, >= 0 (rtol and atol not both 0). Default 0.
      cooldown: evaluations ignored after a reduction, an integer >= 0. Default 0.
      accumulation_size: values averaged per evaluation, an integer >= 1 (1 for a
        validation metric, more for noisy minibatch losses). Default 1.
      min_scale: the scale never goes below it, in [0, 1]. Default 0.
      mode: ``"min"`` (the default, for a loss) or ``"max"`` (for an accuracy); not in optax.

    References:
      Keras / PyTorch ``ReduceLROnPlateau``; optax ``contrib.reduce_on_plateau``.
    """
    check.open_interval("factor", factor, 0, 1, "pass a multiplier such as 0.1 or 0.5")
    check.integer("patience", patience, 1, "pass a number of evaluations >= 1 such as 10")
    check.closed_unit_interval("rtol", rtol, "pass a relative tolerance such as 1e-4")
    check.non_negative("atol", atol, "pass an absolute tolerance >= 0 such as 0.0")
    if check.number("rtol", rtol) == 0.0 and check.number("atol", atol) == 0.0:
        raise ValueError(
            "rtol and atol must not both be 0, got rtol=0.0 and atol=0.0; pass rtol=1e-4 (or a "
            "positive atol) so that an improvement has to be real"
        )
    check.integer("cooldown", cooldown, 0, "pass a number of evaluations >= 0 such as 0")
    check.integer("accumulation_size", accumulation_size, 1, "pass a number of values >= 1")
    check.closed_unit_interval("min_scale", min_scale, "pass the smallest scale such as 0.0")
    check.one_of("mode", mode, ("min", "max"))
    # Values are compared as sign * value: negation is exact, so "max" is "min" on -value.
    sign = 1.0 if mode == "min" else -1.0

    def init(params: Params) -> ReduceLROnPlateauState:
        # The scale in the lowest dtype, so that it never promotes a bfloat16 update.
        high = tree.dtype(params, "highest")
        return ReduceLROnPlateauState(
            scale=jnp.asarray(1.0, tree.dtype(params, "lowest")),
            best_value=jnp.asarray(sign * float("inf"), high),
            plateau_count=zero_count(),
            cooldown_count=zero_count(),
            count=zero_count(),
            avg_value=jnp.zeros([], high),
        )

    def evaluate(state: ReduceLROnPlateauState) -> ReduceLROnPlateauState:
        improved = sign * state.avg_value < (1 - rtol) * (sign * state.best_value) - atol
        best = jnp.where(improved, state.avg_value.astype(state.best_value.dtype), state.best_value)
        plateau = jnp.where(improved, 0, tree.safe_increment(state.plateau_count))
        reduce = plateau == patience
        reduced = jnp.maximum(jnp.where(reduce, state.scale * factor, state.scale), min_scale)
        cooling = state.cooldown_count > 0
        return ReduceLROnPlateauState(
            # During a cooldown the plateau count stays at 0 and the scale is kept.
            scale=jnp.where(cooling, state.scale, reduced.astype(state.scale.dtype)),
            best_value=best,
            plateau_count=jnp.where(cooling | reduce, 0, plateau).astype(jnp.int32),
            cooldown_count=jnp.where(
                cooling, state.cooldown_count - 1, jnp.where(reduce, cooldown, 0)
            ).astype(jnp.int32),
            count=zero_count(),
            avg_value=jnp.zeros([], state.avg_value.dtype),
        )

    def update(
        updates: Updates,
        state: ReduceLROnPlateauState,
        params: Params | None = None,
        *,
        value: jax.typing.ArrayLike,
        **extra_args,
    ) -> tuple[Updates, ReduceLROnPlateauState]:
        del params, extra_args
        count = tree.safe_increment(state.count)
        mean = (
            state.count * state.avg_value + jnp.asarray(value).astype(state.avg_value.dtype)
        ) / count
        state = state._replace(count=count, avg_value=mean.astype(state.avg_value.dtype))
        # Both branches are computed and one is kept: branch-free, so vmap stays cheap.
        state = jax.tree.map(
            lambda new, old: jnp.where(count == accumulation_size, new, old), evaluate(state), state
        )
        return tree.scale(state.scale, updates), state

    return GradientTransformationExtraArgs(init, update)
