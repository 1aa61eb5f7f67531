"""The training state: an immutable pytree of everything a step reads and writes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jopt import _check
from jopt._flat._capability import check_flat
from jopt.base import (
    ArrayTree,
    GradientTransformation,
    OptState,
    Params,
    apply_updates,
    with_extra_args_support,
)
from jopt.schedules._hyper import zero_count


@dataclasses.dataclass(frozen=True)
class TrainState:
    """Step count, parameters, optimizer state, random key and model extras.

    A frozen dataclass registered as a pytree: ``step``, ``params``, ``opt_state``,
    ``rng`` and ``extras`` are leaves (they jit, shard, donate and checkpoint);
    ``tx`` and ``apply_fn`` are static metadata, so a jitted step never traces them.
    Build one with :meth:`create`; change it with :meth:`replace`.

    Attributes:
      step: int32 scalar, number of optimizer steps taken.
      params: the trainable parameters (any pytree).
      opt_state: ``tx.init(params)``.
      rng: a base PRNG key or None; a step derives its key as
        ``jax.random.fold_in(rng, step)``, so ``rng`` itself never changes.
      extras: non-trainable model state (batch statistics, an NNX ``State`` of
        non-``Param`` variables ...) or None.
      tx: the gradient transformation (static).
      apply_fn: the model's apply function, or None (static; for the user's convenience).
    """

    step: jax.Array
    params: Params
    opt_state: OptState
    rng: jax.Array | None
    extras: ArrayTree
    tx: GradientTransformation = dataclasses.field(metadata={"static": True})
    apply_fn: Callable[..., Any] | None = dataclasses.field(default=None, metadata={"static": True})

    @classmethod
    def create(
        cls,
        params: Params,
        tx: GradientTransformation,
        *,
        rng: jax.Array | int | None = None,
        extras: ArrayTree = None,
        apply_fn: Callable[..., Any] | None = None,
    ) -> TrainState:
        """Start training: step 0 and ``opt_state = tx.init(params)``.

        Works under ``jax.eval_shape`` (for shardings before allocation).

        Args:
          params: the trainable parameters.
          tx: a :class:`~jopt.GradientTransformation` (a jopt or optax one).
          rng: a PRNG key, an integer seed (becomes ``jax.random.key(seed)``), or None.
          extras: non-trainable model state, or None.
          apply_fn: the model's apply function, kept as static metadata.

        Example:
          >>> import jax.numpy as jnp, jopt
          >>> state = jopt.train.TrainState.create({"w": jnp.zeros(3)}, jopt.identity())
          >>> int(state.step)
          0
        """
        _check.transformation("tx", tx)
        if _check.is_transformation(params):
            raise TypeError(
                f"params must be a pytree of arrays, got the transformation {params!r}; "
                "pass the parameters first: TrainState.create(params, tx)"
            )
        _check.optional(_check.prng_key, "rng", rng)
        _check.optional(_check.function, "apply_fn", apply_fn, "model.apply")
        check_flat("TrainState.create", [tx], params)
        if isinstance(rng, int) and not isinstance(rng, bool):
            rng = jax.random.key(rng)
        state = cls(
            step=zero_count(),
            params=params,
            opt_state=tx.init(params),
            rng=rng,
            extras=extras,
            tx=tx,
            apply_fn=apply_fn,
        )
        return _own_buffers(state)

    def replace(self, **changes: Any) -> TrainState:
        """A copy with the given fields replaced."""
        return dataclasses.replace(self, **changes)

    def apply_gradients(self, grads: Params, **extra_args: Any) -> TrainState:
        """One optimizer step from ``grads``; ``extra_args`` (``value``, ``value_fn`` ...)
        reach ``tx.update``, unlike flax's ``TrainState.apply_gradients``.

        Args:
          grads: gradients shaped like ``params``.
          **extra_args: forwarded to ``tx.update`` when it accepts them.
        """
        _check.same_structure(
            "grads", grads, self.params, "params",
            "Compute the gradient with respect to state.params, e.g. "
            "jax.grad(loss_fn)(state.params, batch).",
        )  # fmt: skip
        for (path, g), p in zip(
            jax.tree_util.tree_flatten_with_path(grads)[0],
            jax.tree.leaves(self.params),
            strict=True,
        ):
            if jnp.shape(g) != jnp.shape(p):
                raise ValueError(
                    f"grads has shape {jnp.shape(g)} at {jax.tree_util.keystr(path)} but the "
                    f"param there has shape {jnp.shape(p)}; compute the gradient with respect "
                    "to state.params, e.g. jax.grad(loss_fn)(state.params, batch)"
                )
        tx = with_extra_args_support(self.tx) if extra_args else self.tx
        updates, opt_state = tx.update(grads, self.opt_state, self.params, **extra_args)
        return self.replace(
            step=self.step + 1,
            params=apply_updates(self.params, updates),
            opt_state=opt_state,
        )


jax.tree_util.register_dataclass(TrainState)


def _own_buffers(state: TrainState) -> TrainState:
    """Give every leaf its own buffer and a strong dtype.

    Some ``init`` functions store the params (or one zeros array) in several places;
    a donating step would then donate one buffer twice, which XLA rejects. Weakly
    typed scalars (``jnp.asarray(0.0)``) come back strongly typed from a step and
    would make it compile a second time.
    """
    seen: set[int] = set()

    def own(leaf):
        if not isinstance(leaf, jax.Array):
            return leaf
        if getattr(leaf, "weak_type", False):
            return jnp.asarray(leaf, dtype=leaf.dtype)
        if isinstance(leaf, jax.core.Tracer):
            return leaf
        if id(leaf) in seen:
            return jnp.array(leaf, copy=True)
        seen.add(id(leaf))
        return leaf

    return jax.tree.map(own, state)
