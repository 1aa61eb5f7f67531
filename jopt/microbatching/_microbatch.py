"""Evaluating a function batch by batch in sequence, to bound its memory (:func:`microbatch`)."""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt.microbatching._accumulators import AccumulationType, resolve

# The auxiliary outputs of micro_grad, per example (optax calls the tuple "Aux").
IndividualOutputs = collections.namedtuple("Aux", ["values", "metrics", "aux"])


def _reshape_leaf(x: jax.Array, microbatch_size: int, axis: int) -> jax.Array:
    shape = (*x.shape[:axis], -1, microbatch_size, *x.shape[axis + 1 :])
    sharding = jax.typeof(x).sharding
    if not sharding.mesh.are_all_axes_explicit:
        return x.reshape(shape, order="F")
    # Explicit sharding: the batch axis's sharding moves to the microbatch_size axis.
    spec = sharding.spec
    if len(spec) > axis:
        spec = jax.P(*spec[:axis], None, spec[axis], *spec[axis + 1 :])
    shards = x.shape[axis] // sharding.shard_shape(x.shape)[axis]
    if microbatch_size % shards:
        raise ValueError(f"microbatch_size {microbatch_size} must be a multiple of {shards} shards")
    out = jax.sharding.NamedSharding(sharding.mesh, spec)
    return x.reshape(shape, order="F", out_sharding=out)


def reshape_batch_axis(tree: Any, microbatch_size: int, axis: int = 0) -> Any:
    """Split each leaf's batch axis ``B`` into ``(B // microbatch_size, microbatch_size)``.

    Column-major: microbatch :math:`k` holds rows :math:`k, k+n, k+2n, \\dots` with
    :math:`n = B/\\text{microbatch\\_size}`, so a sharding of the batch axis carries over
    to the ``microbatch_size`` axis and every microbatch draws from every shard.

    Args:
      tree: a tree of arrays sharing a batch axis.
      microbatch_size: rows per microbatch; must divide the batch size.
      axis: the batch axis.
    """
    return jax.tree.map(lambda x: _reshape_leaf(x, microbatch_size, axis), tree)


def _as_tuple(value: Any) -> tuple:
    return (value,) if isinstance(value, (int, str)) else tuple(value)


def microbatch(
    fun: Callable[..., Any],
    argnums: int | Sequence[int],
    microbatch_size: int | None,
    accumulator: Any = AccumulationType.SUM,
    *,
    argnames: str | Sequence[str] = (),
    in_axes: int | Sequence[int] = 0,
    num_real_microbatches: int | jax.Array | None = None,
) -> Callable[..., Any]:
    r"""``fun`` evaluated on microbatches in sequence (a ``fori_loop``), results combined.

    .. math::  F(x) = \operatorname{finalize}\big(\text{update}(\cdots
        \text{update}(\text{init}, f(x_0), 0) \cdots, f(x_{n-1}), n-1)\big)

    e.g. :math:`\sum_k f(x_k)` with the default SUM: peak memory is one microbatch's.

    Args:
      fun: any function.
      argnums: positions of the arguments with a batch axis.
      microbatch_size: rows per microbatch, dividing the batch size; None returns ``fun``.
      accumulator: an :class:`Accumulator`, an :class:`AccumulationType`, or a prefix
        tree of them over ``fun``'s output.
      argnames: names of keyword arguments with a batch axis.
      in_axes: the batch axis of each of ``argnums + argnames`` (one int for all).
      num_real_microbatches: run only this many microbatches (may be traced), so a
        varying batch size needs no recompilation.

    References:
      Huang et al., `GPipe <https://arxiv.org/abs/1811.06965>`_, 2019 (micro-batches).
    """
    if microbatch_size is None:
        return fun
    argnums, argnames = _as_tuple(argnums), _as_tuple(argnames)
    axes = (in_axes,) * (len(argnums) + len(argnames)) if isinstance(in_axes, int) else in_axes
    pairs = list(zip([*argnums, *argnames], axes, strict=True))

    def microbatched(*args, **kwargs):
        inputs = {**dict(enumerate(args)), **kwargs}
        sizes = {x.shape[ax] for k, ax in pairs for x in jax.tree.leaves(inputs[k])}
        if len(sizes) != 1:
            raise ValueError(f"the batch arguments must share one batch size, got {sorted(sizes)}")
        (size,) = sizes
        if size % microbatch_size:
            raise ValueError(
                f"the batch size {size} must be divisible by microbatch_size={microbatch_size}"
            )
        for k, ax in pairs:
            inputs[k] = reshape_batch_axis(inputs[k], microbatch_size, ax)
        acc = resolve(accumulator, size // microbatch_size)

        def on(index):
            picked = dict(inputs)
            for k, ax in pairs:
                picked[k] = jax.tree.map(lambda x, ax=ax: jnp.take(x, index, axis=ax), inputs[k])
            positional = [picked[i] for i in range(len(args))]
            return fun(*positional, **{k: picked[k] for k in kwargs})

        steps = size // microbatch_size if num_real_microbatches is None else num_real_microbatches
        carry = acc.init(jax.eval_shape(on, 0))
        carry = jax.lax.fori_loop(0, steps, lambda i, c: acc.update(c, on(i), i), carry)
        return acc.finalize(carry)

    return microbatched


def micro_vmap(
    fun: Callable[..., Any],
    in_axes: int | Sequence[int | None] = 0,
    out_axes: Any = 0,
    *,
    microbatch_size: int | None = None,
    vmap_fn: Callable[..., Any] = jax.vmap,
    accumulator: Any = AccumulationType.CONCAT,
    num_real_microbatches: int | jax.Array | None = None,
) -> Callable[..., Any]:
    r"""``jax.vmap`` of ``fun`` run ``microbatch_size`` rows at a time, results combined.

    .. math::  F(x) = \operatorname{acc}_k\, \operatorname{aggregate}(\operatorname{vmap}(f)(x_k))

    With CONCAT (default) it equals ``vmap_fn(fun, in_axes)``; SUM or MEAN reduce over
    the batch without ever holding all its outputs.

    Args:
      fun: the function to map.
      in_axes: the mapped axis of each positional argument (None: not mapped).
      out_axes: must be 0 (as in optax); move the axis afterwards with ``jnp.moveaxis``.
      microbatch_size: rows per vmapped call; None maps the whole batch at once.
      vmap_fn: a function like ``jax.vmap`` (e.g. with extra arguments bound).
      accumulator: how outputs combine (see :func:`microbatch`).
      num_real_microbatches: run only this many microbatches.

    References:
      Huang et al., `GPipe <https://arxiv.org/abs/1811.06965>`_, 2019 (micro-batches).
    """
    # optax's micro_vmap stacks outputs on axis 0 only; so does this one.
    check.one_of("out_axes", out_axes, (0,))
    in_axes = _as_tuple(in_axes)

    def vmapped_then_reduced(*args, kwargs):
        out = vmap_fn(fun, in_axes, out_axes)(*args, **kwargs)
        rows = jax.tree.leaves(out)[0].shape[0]
        return resolve(accumulator, rows).aggregate(out)

    mapped = [i for i, ax in enumerate(in_axes) if ax is not None]
    run = microbatch(
        vmapped_then_reduced,
        argnums=mapped,
        argnames="kwargs",
        microbatch_size=microbatch_size,
        accumulator=accumulator,
        in_axes=(*(in_axes[i] for i in mapped), 0),
        num_real_microbatches=num_real_microbatches,
    )
    return lambda *args, **kwargs: run(*args, kwargs=kwargs)


def micro_grad(
    fun: Callable[..., Any],
    has_aux: bool = False,
    argnums: int | Sequence[int] = 0,
    *,
    batch_argnums: int | Sequence[int] = 1,
    keep_batch_dim: bool = True,
    microbatch_size: int | None = None,
    accumulator: Any = AccumulationType.SUM,
    transform_fn: Callable[[Any], Any] = lambda x: x,
    metrics_fn: Callable[[Any], Any] = lambda x: None,
    num_real_microbatches: int | jax.Array | None = None,
) -> Callable[..., tuple[Any, Any]]:
    r"""Per-example gradients, transformed then combined: ``(grad, Aux(values, metrics, aux))``.

    .. math::  G = \operatorname{acc}_i\ T\big(\nabla_\theta f(\theta, x_i)\big),
        \qquad m_i = M\big(\nabla_\theta f(\theta, x_i)\big)

    with :math:`T` = ``transform_fn`` (e.g. per-example clipping, as in DP-SGD) and
    :math:`M` = ``metrics_fn``; values, metrics and ``fun``'s aux are returned per example.

    Args:
      fun: ``fun(params, batch, ...)`` returning a scalar (and aux with ``has_aux``).
      has_aux: whether ``fun`` returns ``(value, aux)``.
      argnums: the argument(s) to differentiate.
      batch_argnums: the argument(s) with a batch axis.
      keep_batch_dim: give ``fun`` each example with a batch axis of size 1.
      microbatch_size: examples per vmapped call (see :func:`micro_vmap`).
      accumulator: how the transformed gradients combine (default SUM).
      transform_fn: applied to each example's gradient.
      metrics_fn: per-example metrics of each gradient (before ``transform_fn``).
      num_real_microbatches: run only this many microbatches.

    References:
      Abadi et al., `Deep Learning with Differential Privacy
      <https://arxiv.org/abs/1607.00133>`_, 2016 (per-example gradients).
    """
    batch_argnums = _as_tuple(batch_argnums)
    with_aux = fun if has_aux else (lambda *a, **k: (fun(*a, **k), None))
    value_and_grad = jax.value_and_grad(with_aux, argnums, has_aux=True)

    def one_example(*args, **kwargs):
        (value, aux), grad = value_and_grad(*args, **kwargs)
        return transform_fn(grad), IndividualOutputs(value, metrics_fn(grad), aux)

    in_axes = [0 if i in batch_argnums else None for i in range(max(batch_argnums) + 1)]
    run = micro_vmap(
        one_example,
        in_axes=in_axes,
        accumulator=(accumulator, AccumulationType.CONCAT),
        microbatch_size=microbatch_size,
        num_real_microbatches=num_real_microbatches,
    )
    if not keep_batch_dim:
        return run

    def with_example_axis(*args, **kwargs):
        args = list(args)
        for i in batch_argnums:
            args[i] = jax.tree.map(lambda x: jnp.expand_dims(x, 1), args[i])
        return run(*args, **kwargs)

    return with_example_axis
