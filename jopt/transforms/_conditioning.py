"""Run a wrapped transform only at chosen steps: conditionally transform or mask."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from jopt import _check, tree
from jopt._flat._capability import check_flat
from jopt.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    OptState,
    Params,
    Updates,
    with_extra_args_support,
)
from jopt.schedules._hyper import zero_count


class ConditionFn(Protocol):
    """``fn(step, **extra_args) -> bool scalar``: whether to run the wrapped transform."""

    def __call__(self, step: jax.Array, **extra_args: Any) -> jax.Array: ...


def run_inner_if(
    pred: Any,
    inner: GradientTransformationExtraArgs,
    updates: Updates,
    inner_state: OptState,
    params: Params | None,
    extra_args: dict,
    mask: bool,
) -> tuple[Updates, OptState]:
    """``inner.update`` when ``pred``, else ``(0 if mask else updates, inner_state)``.

    The skipped branch returns exactly the types the inner transform would (its
    updates may be of another dtype than the gradients, e.g. with ``mu_dtype``),
    so that bfloat16 models do not fail in ``lax.cond``.
    """

    def run(state):
        new_updates, new_state = inner.update(updates, state, params, **extra_args)
        return new_updates, tree.cast_like(new_state, state)

    def skip(state):
        shapes = jax.eval_shape(lambda s: run(s)[0], state)
        if mask:
            kept = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)
        else:
            kept = jax.tree.map(lambda u, x: jnp.asarray(u).astype(x.dtype), updates, shapes)
        return kept, state

    if not isinstance(pred, jax.core.Tracer):
        # Eagerly, lax.cond would compile both branches at every call.
        return run(inner_state) if bool(pred) else skip(inner_state)
    return jax.lax.cond(pred, run, skip, inner_state)


def _condition(name: str, fn: Callable, step: jax.Array, extra_args: dict) -> jax.Array:
    pred = jnp.asarray(fn(step, **extra_args))
    if pred.shape != ():
        raise ValueError(
            f"{name} must return a scalar, got an array of shape {pred.shape}; "
            "return e.g. step % 2 == 0"
        )
    return pred


def _check_args(inner: Any, should_transform_fn: Any, forward_extra_args: Any) -> None:
    _check.transformation("inner", inner)
    if not callable(should_transform_fn):
        raise TypeError(
            f"should_transform_fn must be a function of the step, got {should_transform_fn!r}; "
            "pass e.g. lambda step: step % 2 == 0"
        )
    _check.boolean("forward_extra_args", forward_extra_args)


class ConditionallyTransformState(NamedTuple):
    """State of :func:`conditionally_transform`."""

    inner_state: Any  # state of the wrapped transform (moves only when it runs)
    step: jax.Array  # int32 scalar, number of updates seen (saturates)


def conditionally_transform(
    inner: GradientTransformation,
    should_transform_fn: ConditionFn,
    forward_extra_args: bool = False,
) -> GradientTransformationExtraArgs:
    r"""Run ``inner`` where ``should_transform_fn(step)`` holds; pass the updates through otherwise.

    .. math::  u_t = \begin{cases} T(g_t) & f(t) \\ g_t & \text{otherwise} \end{cases}

    Args:
      inner: the wrapped transform.
      should_transform_fn: ``step -> bool`` (the step counts calls to ``update``
        from 0); with ``forward_extra_args`` it also receives ``value``, ``grad`` ...
      forward_extra_args: pass ``update``'s extra keyword arguments to the condition.

    Use :func:`conditionally_mask` to return zeros instead of the updates.
    """
    _check_args(inner, should_transform_fn, forward_extra_args)
    inner = with_extra_args_support(inner)

    def init(params):
        check_flat("conditionally_transform", [inner], params)
        return ConditionallyTransformState(inner.init(params), zero_count())

    def update(updates, state, params=None, **extra_args):
        condition_args = extra_args if forward_extra_args else {}
        pred = _condition("should_transform_fn", should_transform_fn, state.step, condition_args)
        updates, inner_state = run_inner_if(
            pred, inner, updates, state.inner_state, params, extra_args, mask=False
        )
        return updates, ConditionallyTransformState(inner_state, tree.safe_increment(state.step))

    return GradientTransformationExtraArgs(init, update)


class ConditionallyMaskState(NamedTuple):
    """State of :func:`conditionally_mask`."""

    step: jax.Array  # int32 scalar, number of updates seen (saturates)
    inner_state: OptState  # state of the wrapped transform (moves only when it runs)


def conditionally_mask(
    inner: GradientTransformation,
    should_transform_fn: ConditionFn,
    forward_extra_args: bool = False,
) -> GradientTransformationExtraArgs:
    r"""Run ``inner`` where ``should_transform_fn(step)`` holds; return zeros otherwise.

    .. math::  u_t = \begin{cases} T(g_t) & f(t) \\ 0 & \text{otherwise} \end{cases}

    Args:
      inner: the wrapped transform.
      should_transform_fn: ``step -> bool`` (the step counts calls to ``update``
        from 0); with ``forward_extra_args`` it also receives ``value``, ``grad`` ...
      forward_extra_args: pass ``update``'s extra keyword arguments to the condition.

    Use :func:`conditionally_transform` to pass the updates through instead.
    """
    _check_args(inner, should_transform_fn, forward_extra_args)
    inner = with_extra_args_support(inner)

    def init(params):
        check_flat("conditionally_mask", [inner], params)
        return ConditionallyMaskState(zero_count(), inner.init(params))

    def update(updates, state, params=None, **extra_args):
        condition_args = extra_args if forward_extra_args else {}
        pred = _condition("should_transform_fn", should_transform_fn, state.step, condition_args)
        updates, inner_state = run_inner_if(
            pred, inner, updates, state.inner_state, params, extra_args, mask=True
        )
        return updates, ConditionallyMaskState(tree.safe_increment(state.step), inner_state)

    return GradientTransformationExtraArgs(init, update)
