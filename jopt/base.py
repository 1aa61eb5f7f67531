"""The contract every jopt transform follows, and the types it is written in.

A :class:`GradientTransformation` is a pair of pure functions::

    init(params) -> state
    update(updates, state, params=None) -> (new_updates, new_state)

States are pytrees (NamedTuples of arrays), so they jit, vmap, shard, checkpoint
and print. The shape mirrors optax's, so a jopt transform can stand inside
``optax.chain`` and be handed to ``flax.nnx.Optimizer`` unchanged.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, TypeVar

import jax
import jax.numpy as jnp

from jopt import _check

__all__ = [
    "ArrayTree", "EmptyState", "GradientTransformation", "GradientTransformationExtraArgs",
    "MaskOrFn", "OptState", "Params", "ScalarOrSchedule", "Schedule",
    "TransformInitFn", "TransformUpdateExtraArgsFn", "TransformUpdateFn", "Updates",
    "apply_updates", "declared_static_args", "identity", "incremental_update",
    "init_empty_state", "periodic_update", "set_to_zero", "static_args", "stateless",
    "stateless_with_tree_map", "with_extra_args_support",
]  # fmt: skip

# Type aliases, owned here so that no other library's aliases leak into jopt.
ArrayTree = Any
"""A pytree whose leaves are arrays (or scalars)."""
Params = Any
"""A pytree of model parameters."""
Updates = Any
"""A pytree of updates (gradients on the way in), shaped like :data:`Params`."""
OptState = Any
"""The state of a transform: a pytree, usually a NamedTuple."""
Numeric = jax.Array | float | int
PRNGKey = jax.Array
"""A random key (``jax.random.key`` or a legacy uint32 key), under optax's name for it."""
Schedule = Callable[[Numeric], Numeric]
"""A pure function ``step -> value``."""
ScalarOrSchedule = float | jax.Array | Schedule
"""A hyperparameter that may be a number or a schedule of the step count."""
MaskOrFn = Any | Callable[[Params], Any]
"""A pytree of booleans shaped like the params, or a function of the params returning one."""


class TransformInitFn(Protocol):
    """``init(params) -> state``: builds the initial state from (abstract) params."""

    def __call__(self, params: Params) -> OptState: ...


class TransformUpdateFn(Protocol):
    """``update(updates, state, params=None) -> (updates, state)``."""

    def __call__(
        self, updates: Updates, state: OptState, params: Params | None = None
    ) -> tuple[Updates, OptState]: ...


class TransformUpdateExtraArgsFn(Protocol):
    """``update(updates, state, params=None, **extra)``: also takes ``value``, ``grad`` ..."""

    def __call__(
        self,
        updates: Updates,
        state: OptState,
        params: Params | None = None,
        **extra_args: Any,
    ) -> tuple[Updates, OptState]: ...


class GradientTransformation(NamedTuple):
    """A pure gradient transformation: a NamedTuple of ``init`` and ``update``.

    Attributes:
      init: ``init(params) -> state``.
      update: ``update(updates, state, params=None) -> (updates, state)``.
    """

    init: TransformInitFn
    update: TransformUpdateFn


class GradientTransformationExtraArgs(GradientTransformation):
    """A :class:`GradientTransformation` whose ``update`` accepts extra keyword arguments.

    Line searches and plateau schedules need more than the gradient: the loss
    ``value``, the ``grad`` and a ``value_fn``. Transforms that need none of them
    ignore them; :func:`chain` forwards them to every member.
    """

    update: TransformUpdateExtraArgsFn


_Factory = TypeVar("_Factory", bound=Callable[..., Any])
_STATIC_ATTRIBUTE = "__jopt_static_args__"


def static_args(*names: str) -> Callable[[_Factory], _Factory]:
    """Declare the arguments of a transform factory that fix its state's structure.

    Block sizes, size thresholds, bit widths, ranks and masks decide the shapes, dtypes or
    layout of the state (or which leaves it covers): they can never be traced.
    :func:`jopt.inject_hyperparams` keeps the declared names static without the caller
    listing them, and injects every other number. A declared argument given as an array
    (``optax.inject_hyperparams`` turns every number into one) is refused with an error
    that lists the names to pass as ``static_args``.

    Args:
      *names: argument names of the decorated factory.

    Example:
      >>> import jopt
      >>> @jopt.static_args("block_size")
      ... def blocked_sgd(learning_rate, block_size=4):
      ...     return jopt.sgd(learning_rate)
      >>> sorted(jopt.declared_static_args(blocked_sgd))
      ['block_size']
    """

    def declare(factory: _Factory) -> _Factory:
        signature = inspect.signature(factory)
        _check.argument_names("static_args", names, signature, factory.__name__)
        declared = frozenset(names) | declared_static_args(factory)

        @functools.wraps(factory)
        def checked(*args: Any, **kwargs: Any) -> Any:
            arguments = signature.bind_partial(*args, **kwargs).arguments
            for name in sorted(declared & set(arguments)):
                _check.static_value(factory.__name__, name, arguments[name], declared)
            return factory(*args, **kwargs)

        setattr(checked, _STATIC_ATTRIBUTE, declared)
        return checked  # type: ignore[return-value]

    return declare


def declared_static_args(factory: Callable[..., Any]) -> frozenset[str]:
    """The argument names ``factory`` declared with :func:`static_args` (through its wrappers).

    Args:
      factory: a transform factory, possibly wrapped with ``functools.wraps``.
    """
    names: frozenset[str] = frozenset()
    while factory is not None:
        names |= getattr(factory, _STATIC_ATTRIBUTE, frozenset())
        factory = getattr(factory, "__wrapped__", None)
    return names


class EmptyState(NamedTuple):
    """The state of a stateless transform."""


def init_empty_state(params: Params) -> EmptyState:
    """An ``init`` for stateless transforms: returns :class:`EmptyState`."""
    del params
    return EmptyState()


def with_extra_args_support(tx: GradientTransformation) -> GradientTransformationExtraArgs:
    """Wrap ``tx`` so its ``update`` accepts (and ignores) extra keyword arguments.

    Transforms that already accept them are returned unchanged.

    Args:
      tx: any gradient transformation (jopt's or optax's).
    """
    _check.transformation("tx", tx)
    # Duck-typed on the class name too, so optax's extra-args transforms keep
    # their extra arguments inside a jopt chain.
    if isinstance(tx, GradientTransformationExtraArgs) or (
        type(tx).__name__ == "GradientTransformationExtraArgs"
    ):
        return tx

    def update(updates, state, params=None, **extra_args):
        del extra_args
        return tx.update(updates, state, params)

    return GradientTransformationExtraArgs(tx.init, update)


def identity() -> GradientTransformation:
    """The transform that returns its updates unchanged: :math:`u_t = g_t`."""

    def update(updates, state, params=None):
        del params
        return updates, state

    return GradientTransformation(init_empty_state, update)


def set_to_zero() -> GradientTransformation:
    """The transform that replaces every update by zeros: :math:`u_t = 0`.

    With :func:`jopt.partition` it freezes a part of the model.
    """

    def update(updates, state, params=None):
        del params
        return jax.tree.map(jnp.zeros_like, updates), state

    return GradientTransformation(init_empty_state, update)


def stateless(
    f: Callable[[Updates, Params | None], Updates],
) -> GradientTransformation:
    """Build a stateless transform from ``f(updates, params) -> updates``.

    Args:
      f: the whole-tree map; ``params`` is None when ``update`` is called without them.
    """
    _check.function("f", f, "lambda updates, params: updates")

    def update(updates, state, params=None):
        del state
        return f(updates, params), EmptyState()

    return GradientTransformation(init_empty_state, update)


def stateless_with_tree_map(
    f: Callable[[jax.Array, jax.Array | None], jax.Array],
) -> GradientTransformation:
    """Build a stateless transform from a per-leaf ``f(update, param) -> update``.

    Args:
      f: the per-leaf map; ``param`` is None when ``update`` is called without params.
    """
    _check.function("f", f, "lambda update, param: update")

    def update(updates, state, params=None):
        del state
        if params is None:
            return jax.tree.map(lambda u: f(u, None), updates), EmptyState()
        return jax.tree.map(f, updates, params), EmptyState()

    return GradientTransformation(init_empty_state, update)


def apply_updates(params: Params, updates: Updates) -> Params:
    """Return ``params + updates``, leaf by leaf, keeping each parameter's dtype.

    ``None`` leaves in ``params`` stay ``None``; a bfloat16 parameter stays
    bfloat16 even when its update was computed in float32.
    """
    return jax.tree.map(
        lambda p, u: None if p is None else jnp.asarray(p + u).astype(jnp.asarray(p).dtype),
        params,
        updates,
        is_leaf=lambda x: x is None,
    )


def incremental_update(new_tensors: Params, old_tensors: Params, step_size: Numeric) -> Params:
    r"""Polyak averaging: :math:`\tau\,\text{new} + (1-\tau)\,\text{old}`, leaf by leaf.

    A None in ``new_tensors`` (a whole tree or a subtree) stays None, as in optax.

    References:
      Polyak & Juditsky, Acceleration of stochastic approximation by averaging (1992).
    """
    return jax.tree.map(
        lambda new, old: None if new is None else step_size * new + (1.0 - step_size) * old,
        new_tensors,
        old_tensors,
        is_leaf=lambda x: x is None,
    )


def periodic_update(
    new_tensors: Params, old_tensors: Params, steps: jax.Array, update_period: int
) -> Params:
    """Return ``new_tensors`` every ``update_period`` steps, else ``old_tensors``."""
    return jax.lax.cond(
        jnp.mod(steps, update_period) == 0,
        lambda _: new_tensors,
        lambda _: old_tensors,
        None,
    )
