"""Sharpness-Aware Minimization (SAM): step to a nearby worst case, then update from there."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree as jtree
from jopt.base import (
    EmptyState,
    GradientTransformation,
    GradientTransformationExtraArgs,
    OptState,
    Params,
    apply_updates,
    init_empty_state,
)
from jopt.schedules._hyper import zero_count

NormalizeState = EmptyState
"""State of :func:`normalize` (it has none)."""


def normalize() -> GradientTransformation:
    r"""Divide the updates by their global norm: :math:`u_t = g_t / \|g_t\|_2`.

    Used as the first member of SAM's adversarial optimizer, so that the
    adversarial step has length exactly :math:`\rho`.

    References:
      Foret et al., `Sharpness-Aware Minimization for Efficiently Improving Generalization
      <https://arxiv.org/abs/2010.01412>`_, ICLR 2021.
    """

    def update(updates, state, params=None):
        del params
        norm = jtree.norm(updates)
        return jax.tree.map(lambda g: g / norm, updates), state

    return GradientTransformation(init_empty_state, update)


class SAMState(NamedTuple):
    """State of :func:`sam`."""

    steps_since_sync: jax.Array  # int32 scalar, adversarial steps since the last outer step
    opt_state: OptState  # the outer optimizer's state
    adv_state: OptState  # the adversarial optimizer's state
    cache: Params | None  # the outer params during adversarial steps (None in opaque mode)


def _pick(condition: jax.Array, if_true: Any, if_false: Any) -> Any:
    """``c * a + (1 - c) * b`` leaf by leaf, as optax selects (not ``jnp.where``).

    The arithmetic is what optax computes: under ``jit`` XLA fuses it with its neighbours
    and rounds differently from a select, by one ulp that grows over a long run; jopt
    matches optax's numbers bit for bit. Leaves that cannot be multiplied (PRNG keys,
    bools) are selected with ``jnp.where``.
    """

    def pick(a, b):
        if jnp.issubdtype(jnp.result_type(a), jnp.number):
            return condition * a + (1 - condition) * b
        return jnp.where(condition, a, b)

    return jax.tree.map(pick, if_true, if_false)


def sam(
    optimizer: GradientTransformation,
    adv_optimizer: GradientTransformation,
    sync_period: int = 2,
    reset_state: bool = True,
    opaque_mode: bool = False,
    batch_axis_name: str | None = None,
) -> GradientTransformationExtraArgs:
    r"""Sharpness-Aware Minimization: the outer step uses the gradient at an adversarial point.

    With ``adv_optimizer = chain(normalize(), sgd(rho))`` and ``sync_period=2`` this is
    the SAM of the paper:

    .. math::

        \tilde x_t = x_t + \rho\, \frac{\nabla L(x_t)}{\|\nabla L(x_t)\|}, \qquad
        x_{t+1} = x_t + u^{\text{opt}}\big(\nabla L(\tilde x_t)\big)

    In the default *transparent* mode each call to ``update`` is one step: the first
    ``sync_period - 1`` calls move the params adversarially (the outer params are kept in
    ``cache``), the last call returns the params to the cache plus the outer update. In
    *opaque* mode every call does all of it at once and needs ``grad_fn(params, i)``, the
    gradient at the ``i``-th adversarial point, as an extra argument of ``update``.

    Args:
      optimizer: the outer optimizer.
      adv_optimizer: the adversarial (inner) optimizer; its updates are negated (ascent).
      sync_period: adversarial steps per outer step, plus one; an integer >= 1. Default 2.
      reset_state: reset the adversarial optimizer's state after each outer step.
        Default True.
      opaque_mode: run the adversarial steps inside ``update`` (needed when each call
        has side effects, e.g. BatchNorm statistics). Default False.
      batch_axis_name: in opaque mode under ``pmap``/``shard_map``, the axis over which
        the adversarial gradients are averaged; None for no averaging.

    References:
      Foret et al., `Sharpness-Aware Minimization for Efficiently Improving Generalization
      <https://arxiv.org/abs/2010.01412>`_, ICLR 2021.
    """
    check.transformation("optimizer", optimizer)
    check.transformation("adv_optimizer", adv_optimizer)
    check.integer("sync_period", sync_period, minimum=1)
    check.boolean("reset_state", reset_state)
    check.boolean("opaque_mode", opaque_mode)
    if batch_axis_name is not None and not isinstance(batch_axis_name, str):
        raise TypeError(
            f"batch_axis_name must be a str or None, got {batch_axis_name!r}; pass the name "
            "of the pmap/shard_map axis, e.g. 'batch'"
        )

    def init(params):
        return SAMState(
            steps_since_sync=zero_count(),
            opt_state=optimizer.init(params),
            adv_state=adv_optimizer.init(params),
            cache=None if opaque_mode else params,
        )

    def transparent_update(updates, state, params=None, **extra_args: Any):
        del extra_args
        check.params_given("sam", params)
        first = state.steps_since_sync == 0
        last = state.steps_since_sync == sync_period - 1
        adv_updates, adv_state = adv_optimizer.update(updates, state.adv_state, params)
        adv_updates = jax.tree.map(jnp.negative, adv_updates)
        opt_updates, opt_state = optimizer.update(updates, state.opt_state, state.cache)
        # The outer step starts from the cached outer params, not the adversarial point.
        opt_updates = jax.tree.map(lambda c, p, u: c - p + u, state.cache, params, opt_updates)
        if reset_state:
            adv_state = _pick(last, adv_optimizer.init(params), adv_state)
        else:
            adv_state = _pick(last, state.adv_state, adv_state)
        new_state = SAMState(
            steps_since_sync=(state.steps_since_sync + 1) % sync_period,
            opt_state=_pick(last, opt_state, state.opt_state),
            adv_state=adv_state,
            cache=_pick(first, params, state.cache),
        )
        return _pick(last, opt_updates, adv_updates), new_state

    def opaque_update(
        updates,
        state,
        params=None,
        *,
        grad_fn: Callable[[Params, int], Any] | None = None,
        **extra_args: Any,
    ):
        del extra_args
        check.params_given("sam", params)
        if grad_fn is None:
            raise ValueError(
                "grad_fn must be passed to sam's update when opaque_mode=True, got None; "
                "call tx.update(grads, state, params, grad_fn=jax.grad(lambda p, i: loss(p)))"
            )
        adv_params, adv_grads, adv_state = params, updates, state.adv_state
        for i in range(sync_period - 1):
            adv_updates, adv_state = adv_optimizer.update(adv_grads, adv_state, adv_params)
            adv_params = apply_updates(adv_params, jax.tree.map(jnp.negative, adv_updates))
            adv_grads = grad_fn(adv_params, i)
            if batch_axis_name is not None:
                adv_grads = jax.lax.pmean(adv_grads, axis_name=batch_axis_name)
        if reset_state:
            adv_state = adv_optimizer.init(params)
        out, opt_state = optimizer.update(adv_grads, state.opt_state, params)
        return out, SAMState(zero_count(), opt_state, adv_state, None)

    return GradientTransformationExtraArgs(
        init, opaque_update if opaque_mode else transparent_update
    )
