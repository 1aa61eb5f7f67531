"""Meshes and shardings on 8 fake CPU devices: the sharded steps equal the one-device
step, optimizer state follows the params' shardings, the all-reduce transform inside
shard_map equals the global-batch step, and the errors users see."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import jopt
from jopt.testing import assert_trees_close, nested_params
from jopt.train import TrainState, make_train_step
from jopt.train.sharding import (
    all_reduce_gradients,
    batch_sharding,
    create_sharded_state,
    make_mesh,
    opt_state_shardings,
    param_shardings,
    replicated,
    shard_batch,
    train_state_shardings,
)
from tests._cases import CASES

RNG = np.random.default_rng(0)
BATCH = {
    "x": jnp.asarray(RNG.normal(size=(32, 16)), jnp.float32),
    "y": jnp.asarray(RNG.normal(size=(32, 4)), jnp.float32),
}


def _init_params():
    rng = np.random.default_rng(1)
    return {
        "w1": jnp.asarray(rng.normal(size=(16, 8)) * 0.3, jnp.float32),
        "b1": jnp.zeros(8, jnp.float32),
        "w2": jnp.asarray(rng.normal(size=(8, 4)) * 0.3, jnp.float32),
        "scale": jnp.ones([], jnp.float32),
    }


def _loss(params, batch):
    hidden = jnp.tanh(batch["x"] @ params["w1"] + params["b1"])
    return jnp.mean((params["scale"] * hidden @ params["w2"] - batch["y"]) ** 2)


def _tx():
    return jopt.chain(jopt.clip_by_global_norm(1.0), jopt.adamw(1e-2, weight_decay=1e-3))


def _create():
    return TrainState.create(_init_params(), _tx())


@pytest.fixture(scope="module")
def reference():
    """Three steps on one device, without any sharding."""
    state = jax.device_put(_create(), jax.devices()[0])
    step = make_train_step(_loss)
    for _ in range(3):
        state, metrics = step(state, BATCH)
    return state.params, metrics["loss"]


def _sharded_run(mesh, axis):
    state, shardings = create_sharded_state(_create, mesh, axis=axis, min_size=32)
    step = make_train_step(_loss, state_sharding=shardings, batch_sharding=batch_sharding(mesh))
    batch = shard_batch(BATCH, mesh)
    for _ in range(3):
        state, metrics = step(state, batch)
    assert step.jitted._cache_size() == 1
    return state, shardings, metrics


def _assert_placed_as_reported(state, shardings):
    for leaf, sharding in zip(jax.tree.leaves(state), jax.tree.leaves(shardings), strict=True):
        assert leaf.sharding.is_equivalent_to(sharding, np.ndim(leaf)), (leaf.sharding, sharding)


def test_data_parallel_step_equals_single_device(reference):
    state, shardings, metrics = _sharded_run(make_mesh(), axis=None)
    assert_trees_close(state.params, reference[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(metrics["loss"], reference[1], rtol=1e-5)
    assert state.params["w1"].sharding.is_fully_replicated
    _assert_placed_as_reported(state, shardings)


@pytest.mark.parametrize("axis", ["model", "data"])  # tensor-style and FSDP-style
def test_fully_sharded_step_equals_single_device(reference, axis):
    mesh = make_mesh({"data": 2, "model": 4})
    state, shardings, metrics = _sharded_run(mesh, axis=axis)
    assert_trees_close(state.params, reference[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(metrics["loss"], reference[1], rtol=1e-5)
    assert shardings.params["w1"].spec == P(axis, None)  # the largest divisible dim
    assert shardings.params["w2"].spec == P(axis, None)  # 8 x 4: 8 is larger
    assert shardings.params["b1"].spec == P()  # below min_size
    _assert_placed_as_reported(state, shardings)
    adam_state = state.opt_state[1][0]
    assert adam_state.mu["w1"].sharding.spec == P(axis, None)
    assert adam_state.mu["w1"].addressable_shards[0].data.shape == (16 // mesh.shape[axis], 8)


def test_opt_state_follows_param_shardings_before_allocation():
    mesh = make_mesh({"data": 2, "model": 4})
    abstract = jax.eval_shape(_init_params)
    shardings = param_shardings(abstract, mesh, axis="model", min_size=32)
    state_shardings = opt_state_shardings(_tx(), abstract, shardings)
    adam = state_shardings[1][0]
    assert adam.count == replicated(mesh)
    assert adam.mu == shardings and adam.nu == shardings
    assert jax.tree.structure(state_shardings) == jax.tree.structure(
        jax.eval_shape(_tx().init, abstract)
    )


@pytest.mark.parametrize("case", CASES, ids=str)
def test_every_registered_state_gets_valid_shardings(case):
    """Abstract only (no compile): the shardings mirror the state and fit each leaf's shape."""
    mesh = make_mesh({"data": 2, "model": 4})
    abstract = jax.eval_shape(nested_params)
    shardings = param_shardings(abstract, mesh, axis="model", min_size=1)
    state = jax.eval_shape(case.make().init, abstract)
    state_shardings = opt_state_shardings(case.make(), abstract, shardings)
    assert jax.tree.structure(state_shardings) == jax.tree.structure(state)
    for leaf, sharding in zip(
        jax.tree.leaves(state), jax.tree.leaves(state_shardings), strict=True
    ):
        sharding.shard_shape(leaf.shape)  # raises if the split does not fit the leaf


def test_leaf_shaped_like_a_param_outside_a_params_like_subtree():
    mesh = make_mesh({"model": 8})
    abstract = {"w": jax.ShapeDtypeStruct((16, 2), jnp.float32)}
    shardings = param_shardings(abstract, mesh, axis="model", min_size=1)
    tx = jopt.GradientTransformation(lambda p: (p["w"], jnp.zeros(3)), None)
    state_shardings = opt_state_shardings(tx, abstract, shardings)
    assert state_shardings == (shardings["w"], replicated(mesh))


def test_param_rule_replicates_leaves_without_a_divisible_dimension():
    mesh = make_mesh({"model": 8})
    abstract = {
        "odd": jax.ShapeDtypeStruct((3, 5), jnp.float32),
        "tie": jax.ShapeDtypeStruct((8, 8), jnp.float32),
    }
    shardings = param_shardings(abstract, mesh, axis="model", min_size=1)
    assert shardings["odd"].spec == P() and shardings["tie"].spec == P("model", None)
    assert param_shardings(abstract, mesh)["tie"].spec == P()  # axis=None: data parallel


def test_train_state_shardings_replicates_step_rng_and_extras():
    mesh = make_mesh()
    abstract = jax.eval_shape(
        lambda: TrainState.create(_init_params(), _tx(), rng=0, extras={"n": jnp.zeros(3)})
    )
    shardings = train_state_shardings(abstract, mesh)
    assert shardings.step == replicated(mesh) and shardings.extras["n"] == replicated(mesh)
    assert shardings.tx is abstract.tx


def test_make_mesh_shapes_and_errors():
    mesh = make_mesh()
    assert dict(mesh.shape) == {"data": 8}
    assert dict(make_mesh({"data": 2, "model": -1}).shape) == {"data": 2, "model": 4}
    with pytest.raises(ValueError, match="need 6 devices but 8"):
        make_mesh({"data": 2, "model": 3})
    with pytest.raises(ValueError, match="at most one mesh axis may be -1"):
        make_mesh({"data": -1, "model": -1})
    with pytest.raises(ValueError, match="multiply to 3, which does not divide the 8"):
        make_mesh({"data": 3, "model": -1})
    with pytest.raises(ValueError, match=r"axes\['data'\] must be an integer >= 1"):
        make_mesh({"data": 0})


def test_shard_batch_places_and_rejects_indivisible_batches():
    mesh = make_mesh({"data": 4, "model": 2})
    batch = shard_batch(BATCH, mesh)
    assert batch["x"].sharding == NamedSharding(mesh, P("data"))
    assert batch["x"].addressable_shards[0].data.shape == (8, 16)
    with pytest.raises(
        ValueError, match=r"\['x'\] has leading dimension 10.*size 4.*multiple of 4"
    ):
        shard_batch({"x": jnp.zeros((10, 2))}, mesh)
    with pytest.raises(ValueError, match=r"\['n'\] is a scalar"):
        shard_batch({"n": jnp.zeros(())}, mesh)
    with pytest.raises(ValueError, match="data_axis must be an axis of the mesh"):
        shard_batch(BATCH, mesh, data_axis="batch")


def test_opt_state_shardings_rejects_mismatched_structures():
    mesh = make_mesh()
    abstract = jax.eval_shape(_init_params)
    with pytest.raises(ValueError, match="param_shardings has structure"):
        opt_state_shardings(_tx(), abstract, {"w1": replicated(mesh)})


def test_all_reduce_inside_shard_map_equals_the_global_batch_step():
    """A per-device train step (jit=False) under shard_map: each device differentiates its
    eighth of the batch, the transform averages the gradients, momentum SGD follows."""
    mesh = make_mesh()
    sgd = jopt.sgd(0.1, momentum=0.9)
    local_step = make_train_step(_loss, jit=False)
    sharded_step = jax.jit(
        jax.shard_map(
            local_step,
            mesh=mesh,
            in_specs=(P(), P("data")),
            out_specs=(P(), P()),
            check_vma=False,
        )
    )
    global_step = make_train_step(_loss, donate=False)
    state = TrainState.create(_init_params(), jopt.chain(all_reduce_gradients("data"), sgd))
    reference = TrainState.create(_init_params(), sgd)
    for _ in range(2):
        state, _ = sharded_step(state, BATCH)
        reference, _ = global_step(reference, BATCH)
    assert_trees_close(state.params, reference.params, rtol=1e-5, atol=1e-6)


def test_all_reduce_sum_and_errors():
    mesh = make_mesh()
    per_device = jnp.arange(8.0)
    total = jax.shard_map(
        lambda g: all_reduce_gradients("data", "sum").update(g, None)[0],
        mesh=mesh,
        in_specs=P("data"),
        out_specs=P(),
        check_vma=False,
    )(per_device)
    np.testing.assert_allclose(total, [28.0])
    with pytest.raises(ValueError, match="reduce must be one of 'mean', 'sum', got 'max'"):
        all_reduce_gradients("data", "max")
    with pytest.raises(TypeError, match="axis_name must be a mesh axis name"):
        all_reduce_gradients(0)
    # A transform, defined with the others; the sharding module re-exports it.
    assert jopt.all_reduce_gradients is jopt.transforms.all_reduce_gradients is all_reduce_gradients


def test_fit_puts_single_and_stacked_batches_on_the_batch_sharding():
    # 40 examples in batches of 8: stacks of 2 batches and a last one alone, each placed
    # split over the mesh's data axis (a stack keeps its stacking axis whole).
    from jopt.train import Batches, fit  # noqa: PLC0415

    mesh = make_mesh()
    rng = np.random.default_rng(2)
    data = {"x": rng.normal(size=(40, 16)).astype(np.float32),
            "y": rng.normal(size=(40, 4)).astype(np.float32)}  # fmt: skip

    def run(**kwargs):
        batches = Batches(data, batch_size=8, seed=0)
        return fit(_create(), make_train_step(_loss, jit=False), batches, epochs=2,
                   progress=False, steps_per_call=2, **kwargs)  # fmt: skip

    sharded, plain = run(batch_sharding=batch_sharding(mesh)), run()
    # A fully sharded state keeps the shardings its step pins, through fit's own program.
    state, shardings = create_sharded_state(_create, make_mesh({"data": 2, "model": 4}),
                                            axis="model", min_size=32)  # fmt: skip
    step = make_train_step(_loss, state_sharding=shardings)
    placed = fit(state, step, Batches(data, batch_size=8, seed=0), epochs=2, progress=False,
                 steps_per_call=2).state  # fmt: skip
    _assert_placed_as_reported(placed, shardings)
    assert_trees_close(placed.params, plain.state.params, rtol=1e-5, atol=1e-6)
    pairs = zip(jax.tree.leaves(sharded.state.params), jax.tree.leaves(plain.state.params),
                strict=True)  # fmt: skip
    for a, b in pairs:
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    assert int(sharded.state.step) == 10


def test_a_stack_of_batches_keeps_its_stacking_axis_whole():
    from jopt.train._sources import stacked_sharding  # noqa: PLC0415

    mesh = make_mesh({"data": 2, "model": 4})
    sharding = batch_sharding(mesh)
    stacked = stacked_sharding({"x": sharding, "y": sharding})
    assert stacked["x"].spec == P(None, *sharding.spec) and stacked["x"].mesh == mesh
    one_device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    assert stacked_sharding(one_device) == one_device
