"""Lookahead: fast weights explore, slow weights follow every few steps (:func:`lookahead`)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check
from jopt.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    OptState,
    Params,
    with_extra_args_support,
)
from jopt.schedules._hyper import zero_count


class LookaheadState(NamedTuple):
    """State of :func:`lookahead`."""

    fast_state: OptState  # state of the fast optimizer
    steps_since_sync: jax.Array  # int32 scalar, fast steps since the last synchronisation


class LookaheadParams(NamedTuple):
    """The fast and the slow copy of the parameters that :func:`lookahead` trains.

    Compute gradients at ``fast``; evaluate and deploy ``slow`` (it generalises better).

    References:
      Zhang et al., `Lookahead Optimizer: k steps forward, 1 step back
      <https://arxiv.org/abs/1907.08610>`_, 2019.
    """

    fast: Params  # the parameters the gradients are taken at
    slow: Params  # the parameters to evaluate

    @classmethod
    def init_synced(cls, params: Params) -> LookaheadParams:
        """Both copies equal to ``params``."""
        return cls(fast=params, slow=params)


def lookahead(
    fast_optimizer: GradientTransformation,
    sync_period: int,
    slow_step_size: float,
    reset_state: bool = False,
) -> GradientTransformationExtraArgs:
    r"""Take ``sync_period`` fast steps, then move the slow weights towards the fast ones.

    With :math:`\phi` the slow and :math:`\theta` the fast weights, every
    :math:`k`-th step (after the fast step :math:`\theta \leftarrow \theta + u`):

    .. math::  \phi \leftarrow \phi + \alpha\,(\theta - \phi), \qquad \theta \leftarrow \phi

    Both moves are returned as updates of :class:`LookaheadParams`; apply them
    unchanged with :func:`jopt.apply_updates` and compute the gradients at
    ``params.fast``.

    Args:
      fast_optimizer: the optimizer of the inner loop.
      sync_period: :math:`k`, fast steps between synchronisations, an integer >= 1.
      slow_step_size: :math:`\alpha`, in [0, 1] (the paper uses 0.5).
      reset_state: re-initialise the fast optimizer's state at each synchronisation.

    References:
      Zhang et al., `Lookahead Optimizer: k steps forward, 1 step back
      <https://arxiv.org/abs/1907.08610>`_, 2019.

    Example:
      >>> import jax.numpy as jnp, jopt
      >>> tx = jopt.lookahead(jopt.sgd(0.1), sync_period=5, slow_step_size=0.5)
      >>> params = jopt.LookaheadParams.init_synced(jnp.ones(2))
      >>> state = tx.init(params)
    """
    _check.transformation("fast_optimizer", fast_optimizer)
    _check.integer(
        "sync_period", sync_period, minimum=1, fix="pass the fast steps per sync, e.g. 5"
    )
    _check.closed_unit_interval(
        "slow_step_size", slow_step_size, fix="pass a value in (0, 1] such as 0.5"
    )
    _check.boolean("reset_state", reset_state)
    fast_optimizer = with_extra_args_support(fast_optimizer)

    def init(params):
        # Plain params are the fast ones: handy when adapting existing code.
        fast = params.fast if hasattr(params, "fast") else params
        return LookaheadState(fast_optimizer.init(fast), zero_count())

    def update(updates, state, params=None, **extra_args):
        if not (hasattr(params, "fast") and hasattr(params, "slow")):
            raise ValueError(
                "lookahead update needs params=LookaheadParams(fast, slow), got "
                f"{type(params).__name__}; "
                "build them with jopt.LookaheadParams.init_synced(params)"
            )
        updates, fast_state = fast_optimizer.update(
            updates, state.fast_state, params.fast, **extra_args
        )
        sync = state.steps_since_sync == sync_period - 1
        # One update merges the last fast step with the synchronisation:
        # d = fast + u - slow;  slow += alpha * d;  fast += u - (1 - alpha) * d.
        difference = jax.tree.map(lambda f, u, s: f + u - s, params.fast, updates, params.slow)
        slow_updates = jax.tree.map(lambda d: slow_step_size * sync * d, difference)
        fast_updates = jax.tree.map(
            lambda u, d: u - sync * (1 - slow_step_size) * d, updates, difference
        )
        if reset_state:
            fresh = fast_optimizer.init(params.fast)
            fast_state = jax.tree.map(
                lambda now, new: jnp.where(sync, new, now).astype(jnp.result_type(now)),
                fast_state,
                fresh,
            )
        steps = (state.steps_since_sync + 1) % sync_period
        return LookaheadParams(fast_updates, slow_updates), LookaheadState(fast_state, steps)

    return GradientTransformationExtraArgs(init, update)
