"""Meshes and shardings for the training step: data parallel and fully sharded.

Data parallel: the batch is split on a ``"data"`` axis, params and optimizer state
are replicated. Fully sharded: big params are split along one of their dimensions
on a mesh axis, and every optimizer-state leaf shaped like a param follows that
param's sharding. Shardings are computed from abstract shapes, before anything is
allocated::

    mesh = make_mesh({"data": 2, "model": 4})
    state, shardings = create_sharded_state(
        lambda: TrainState.create(init_params(), jopt.adamw(1e-3)), mesh, axis="model")
    step = make_train_step(loss_fn, state_sharding=shardings,
                           batch_sharding=batch_sharding(mesh))
    state, metrics = step(state, shard_batch(batch, mesh))

Inside ``shard_map``/``pmap``, where each device sees only its part of the batch,
:func:`jopt.all_reduce_gradients` (a transform, re-exported here) averages the gradients
over the named axis.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from jopt import _check
from jopt.base import GradientTransformation, Params
from jopt.train._state import TrainState
from jopt.transforms._collectives import all_reduce_gradients

__all__ = [
    "all_reduce_gradients",  # a transform (jopt.all_reduce_gradients), kept here for existing code
    "batch_sharding",
    "create_sharded_state",
    "make_mesh",
    "opt_state_shardings",
    "param_shardings",
    "replicated",
    "shard_batch",
    "train_state_shardings",
]


def make_mesh(
    axes: Mapping[str, int] | None = None, *, devices: Sequence[jax.Device] | None = None
) -> Mesh:
    """A device mesh with named axes; one axis size may be -1 (all that remain).

    Axes are of type ``Auto``: XLA propagates shardings from the arrays, so the
    same step runs on one device or many.

    Args:
      axes: ``{name: size}`` in mesh order; default ``{"data": -1}`` (every device
        on one data-parallel axis). The sizes must multiply to the number of devices.
      devices: the devices to use; default ``jax.devices()`` (all processes).

    Example:
      >>> from jopt.train.sharding import make_mesh
      >>> mesh = make_mesh({"data": -1, "model": 1})
    """
    axes = {"data": -1} if axes is None else dict(axes)
    devices = list(jax.devices() if devices is None else devices)
    if not axes:
        raise ValueError("axes must name at least one axis, got {}; pass e.g. {'data': -1}")
    for name, size in axes.items():
        if not isinstance(name, str):
            raise TypeError(f"mesh axis names must be strings, got {name!r}")
        if size != -1:
            _check.integer(
                f"axes[{name!r}]",
                size,
                minimum=1,
                fix="pass a positive size, or -1 for all remaining devices",
            )
    inferred = [name for name, size in axes.items() if size == -1]
    if len(inferred) > 1:
        raise ValueError(f"at most one mesh axis may be -1, got {inferred}; fix all but one size")
    known = math.prod(size for size in axes.values() if size != -1)
    if inferred:
        if len(devices) % known:
            raise ValueError(
                f"the fixed axis sizes {axes} multiply to {known}, which does not divide the "
                f"{len(devices)} devices; pick sizes whose product divides {len(devices)}"
            )
        axes[inferred[0]] = len(devices) // known
    if math.prod(axes.values()) != len(devices):
        raise ValueError(
            f"mesh axes {axes} need {math.prod(axes.values())} devices but {len(devices)} "
            "are available; make the sizes multiply to the device count, or use -1 for one axis"
        )
    grid = np.asarray(devices, dtype=object).reshape(tuple(axes.values()))
    return Mesh(grid, tuple(axes), axis_types=(AxisType.Auto,) * len(axes))


def replicated(mesh: Mesh) -> NamedSharding:
    """The sharding that keeps a full copy of an array on every device of ``mesh``."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh, data_axis: str = "data") -> NamedSharding:
    """Split the leading (batch) dimension over ``data_axis``, replicate over other axes."""
    _axis_in_mesh("data_axis", data_axis, mesh)
    return NamedSharding(mesh, PartitionSpec(data_axis))


def shard_batch(batch: Any, mesh: Mesh, data_axis: str = "data") -> Any:
    """Place a batch on ``mesh``, its leading dimension split over ``data_axis``.

    With one process ``batch`` is the global batch. With several (``jax.distributed``)
    it is this process's part, and the global batch is the concatenation over processes.

    Raises:
      ValueError: if a leaf's global leading dimension is not a multiple of the
        ``data_axis`` size (the message names the leaf and the fix).
    """
    sharding = batch_sharding(mesh, data_axis)
    ways = mesh.shape[data_axis]
    processes = jax.process_count()

    def place(path, leaf):
        where = jax.tree_util.keystr(path) or "<root>"
        if np.ndim(leaf) == 0:
            raise ValueError(
                f"batch leaf {where} is a scalar; every batch leaf needs a leading batch "
                "dimension to split over the devices (pass scalars through a closure instead)"
            )
        rows = np.shape(leaf)[0] * processes
        if rows % ways:
            raise ValueError(
                f"batch leaf {where} has leading dimension {rows}, which the {data_axis!r} "
                f"axis of size {ways} does not divide; use a batch size that is a multiple of "
                f"{ways} (e.g. {ways * max(1, rows // ways)}), or drop or pad the last batch"
            )
        if processes == 1:
            return jax.device_put(leaf, sharding)
        return jax.make_array_from_process_local_data(sharding, np.asarray(leaf))

    return jax.tree_util.tree_map_with_path(place, batch)


def param_shardings(
    params: Params, mesh: Mesh, axis: str | None = None, min_size: int = 1024
) -> Any:
    """Shardings for params: replicated, or each big leaf split on ``axis``.

    The rule for a leaf with at least ``min_size`` elements: split its largest
    dimension that the ``axis`` size divides (the first such on ties); leaves that
    are smaller, or have no divisible dimension, are replicated.

    Args:
      params: the params, concrete or abstract (``jax.ShapeDtypeStruct``).
      mesh: the device mesh.
      axis: the mesh axis to split params over (``"model"``, or ``"data"`` for
        FSDP/ZeRO-3); None replicates every leaf (data parallel).
      min_size: leaves with fewer elements stay replicated.
    """
    _check.integer("min_size", min_size, minimum=0)
    if axis is None:
        return jax.tree.map(lambda _: replicated(mesh), params)
    _axis_in_mesh("axis", axis, mesh)
    ways = mesh.shape[axis]

    def rule(leaf):
        shape = np.shape(leaf)
        if ways == 1 or math.prod(shape) < min_size:
            return replicated(mesh)
        candidates = [d for d in range(len(shape)) if shape[d] % ways == 0]
        if not candidates:
            return replicated(mesh)
        dim = max(candidates, key=lambda d: (shape[d], -d))
        spec = [None] * len(shape)
        spec[dim] = axis
        return NamedSharding(mesh, PartitionSpec(*spec))

    return jax.tree.map(rule, params)


def opt_state_shardings(
    tx: GradientTransformation,
    abstract_params: Params,
    param_shardings: Any,
    mesh: Mesh | None = None,
) -> Any:
    """Shardings for ``tx.init(params)``, computed without allocating it.

    Every subtree of the state that is shaped like the params (moments such as
    ``mu`` and ``nu``) takes the params' shardings; any other leaf whose shape
    equals a param's takes that param's sharding when all params of that shape
    share one; everything else (counts, scalars, histories) is replicated.

    Args:
      tx: the transform.
      abstract_params: params or their ``jax.ShapeDtypeStruct`` values.
      param_shardings: a pytree of shardings shaped like the params.
      mesh: the mesh for replicated leaves; default: the params' shardings' mesh.
    """
    _check.same_structure(
        "param_shardings",
        param_shardings,
        abstract_params,
        "params",
        "build them with jopt.train.sharding.param_shardings(params, mesh)",
    )
    mesh = _mesh_of(param_shardings, mesh)
    abstract_state = jax.eval_shape(tx.init, abstract_params)
    params_def = jax.tree.structure(abstract_params)
    shapes = [np.shape(p) for p in jax.tree.leaves(abstract_params)]
    flat_shardings = jax.tree.leaves(param_shardings)
    by_shape: dict[tuple, Any] = {}
    for shape, sharding in zip(shapes, flat_shardings, strict=True):
        by_shape[shape] = sharding if by_shape.get(shape, sharding) == sharding else None

    def params_like(node):
        leaves, treedef = jax.tree.flatten(node)
        return treedef == params_def and [np.shape(x) for x in leaves] == shapes

    def assign(node):
        if params_like(node) and params_def.num_leaves > 0:
            return jax.tree.unflatten(jax.tree.structure(node), flat_shardings)
        return by_shape.get(np.shape(node)) or replicated(mesh)

    return jax.tree.map(assign, abstract_state, is_leaf=params_like)


def train_state_shardings(
    abstract_state: TrainState, mesh: Mesh, param_shardings: Any = None
) -> TrainState:
    """A :class:`~jopt.train.TrainState` of shardings for ``make_train_step(state_sharding=)``.

    Params take ``param_shardings`` (default: replicated), the optimizer state
    follows them (:func:`opt_state_shardings`); step, rng and extras are replicated.

    Args:
      abstract_state: ``jax.eval_shape`` of the state's creation (or a real state).
      mesh: the device mesh.
      param_shardings: shardings shaped like the params, or None (replicated).
    """
    if param_shardings is None:
        param_shardings = jax.tree.map(lambda _: replicated(mesh), abstract_state.params)
    everywhere = lambda tree: jax.tree.map(lambda _: replicated(mesh), tree)
    return abstract_state.replace(
        step=replicated(mesh),
        params=param_shardings,
        opt_state=opt_state_shardings(
            abstract_state.tx, abstract_state.params, param_shardings, mesh
        ),
        rng=everywhere(abstract_state.rng),
        extras=everywhere(abstract_state.extras),
    )


def create_sharded_state(
    create: Callable[[], TrainState],
    mesh: Mesh,
    axis: str | None = None,
    min_size: int = 1024,
) -> tuple[TrainState, TrainState]:
    """Create a state directly in its shardings; return ``(state, shardings)``.

    ``create`` runs once abstractly (to compute shardings) and once compiled with
    those output shardings, so no device ever holds the full unsharded state.

    Args:
      create: builds the state, e.g. ``lambda: TrainState.create(init(key), tx)``.
      mesh: the device mesh.
      axis: split big params over this mesh axis (None: replicate, data parallel).
      min_size: see :func:`param_shardings`.
    """
    abstract = jax.eval_shape(create)
    shardings = train_state_shardings(
        abstract, mesh, param_shardings(abstract.params, mesh, axis, min_size)
    )
    return jax.jit(create, out_shardings=shardings)(), shardings


def _axis_in_mesh(name: str, axis: str, mesh: Mesh) -> None:
    if axis not in mesh.axis_names:
        raise ValueError(
            f"{name} must be an axis of the mesh {tuple(mesh.axis_names)}, got {axis!r}; "
            f"pass one of them or build the mesh with make_mesh({{{axis!r}: -1}})"
        )


def _mesh_of(shardings: Any, mesh: Mesh | None) -> Mesh:
    if mesh is not None:
        return mesh
    for sharding in jax.tree.leaves(shardings):
        if isinstance(sharding, NamedSharding):
            return sharding.mesh
    raise ValueError("param_shardings holds no NamedSharding to take the mesh from; pass mesh=")
