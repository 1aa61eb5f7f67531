"""PSGD Kron in the training layer: sharded steps on 8 fake CPU devices equal one device,
``fit`` trains with it, and its weight-decay mask is honoured."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jopt
from jopt import contrib
from jopt.testing import assert_trees_close
from jopt.train import Batches, TrainState, fit, make_train_step
from jopt.train.sharding import batch_sharding, create_sharded_state, make_mesh, shard_batch

RNG = np.random.default_rng(0)
BATCH = {
    "x": jnp.asarray(RNG.normal(size=(32, 16)), jnp.float32),
    "y": jnp.asarray(RNG.normal(size=(32, 4)), jnp.float32),
}


def _params():
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
    # A refit every other step: both branches of the refit's cond run in three steps.
    return contrib.kron(2e-2, weight_decay=1e-3, preconditioner_update_probability=0.5)


def _three_steps(state, step, batch):
    for _ in range(3):
        state, metrics = step(state, batch)
    return state, metrics


@pytest.fixture(scope="module")
def one_device():
    state = jax.device_put(TrainState.create(_params(), _tx()), jax.devices()[0])
    return _three_steps(state, make_train_step(_loss), BATCH)


@pytest.mark.parametrize("axis", [None, "data"])  # data-parallel, FSDP-style
def test_sharded_step_equals_one_device(one_device, axis):
    mesh = make_mesh() if axis is None else make_mesh({"data": 2, "model": 4})
    state, shardings = create_sharded_state(
        lambda: TrainState.create(_params(), _tx()), mesh, axis=axis, min_size=32
    )
    step = make_train_step(_loss, state_sharding=shardings, batch_sharding=batch_sharding(mesh))
    state, metrics = _three_steps(state, step, shard_batch(BATCH, mesh))
    assert_trees_close(state.params, one_device[0].params, rtol=1e-5, atol=1e-6)
    assert_trees_close(state.opt_state, one_device[0].opt_state, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(metrics["loss"], one_device[1]["loss"], rtol=1e-5)
    for leaf, sharding in zip(
        jax.tree.leaves(state.opt_state), jax.tree.leaves(shardings.opt_state), strict=True
    ):
        assert leaf.sharding.is_equivalent_to(sharding, np.ndim(leaf))
    if axis == "data":  # the momentum follows its param's sharding
        assert state.opt_state[0].mu["w1"].sharding.spec == shardings.params["w1"].spec


def test_fit_trains_and_the_weight_decay_mask_is_honoured():
    mask = {"w1": True, "b1": False, "w2": True, "scale": False}
    tx = contrib.kron(1e-2, weight_decay=0.5, weight_decay_mask=mask)
    state = TrainState.create(_params(), tx)
    result = fit(
        state,
        make_train_step(_loss),
        Batches(BATCH, batch_size=8, seed=0),
        epochs=3,
        progress=False,
        steps_per_call=4,
    )
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < losses[0]
    assert bool(jopt.tree.all_finite(result.state.params))


def test_weight_decay_mask_decays_only_the_masked_leaves():
    params = {"w": jnp.ones((3, 2)), "b": jnp.ones(2)}
    tx = contrib.kron(0.1, weight_decay=0.5, weight_decay_mask={"w": True, "b": False})
    zero = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zero, tx.init(params), params)
    np.testing.assert_allclose(updates["w"], -0.05)
    np.testing.assert_allclose(updates["b"], 0.0)
