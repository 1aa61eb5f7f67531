"""Distributed Shampoo's own rules: roots against NumPy, the layout, the refresh period, the
fallback on a failed root, degenerate gradients, bfloat16, 8 fake devices and ``fit``."""

from __future__ import annotations

import enum

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jopt
from jopt.contrib import _matrix_root as roots
from jopt.contrib._shampoo_blocks import Blocks, merge_small_dims
from jopt.testing import assert_trees_close
from jopt.train import Batches, TrainState, fit, make_train_step
from jopt.train.sharding import batch_sharding, create_sharded_state, make_mesh, shard_batch

RNG = np.random.default_rng(0)
PARAMS = {"w": jnp.asarray(RNG.normal(size=(6, 4)), jnp.float32), "b": jnp.ones(3), "s": 1.0}


def _numpy_root(matrix, p, eps):
    ridge = eps * np.linalg.eigvalsh(matrix).max()
    e, u = np.linalg.eigh(matrix.astype(np.float64) + ridge * np.eye(len(matrix)))
    return (u * e ** (-1.0 / p)) @ u.T


@pytest.mark.parametrize("method", ["newton", "eigh"])
@pytest.mark.parametrize("p", [2, 4, 6])
def test_inverse_root_equals_numpy(method, p):
    a = RNG.normal(size=(7, 7))
    matrix = a @ a.T + 0.5 * np.eye(7)
    fn = roots.inverse_pth_root_eigh if method == "eigh" else roots.inverse_pth_root_newton
    root, error = jax.jit(fn, static_argnums=1)(
        jnp.asarray(matrix, jnp.float32), p, 7, roots.start_vector(7), 1e-6
    )
    expected = _numpy_root(matrix, p, 1e-6)
    np.testing.assert_allclose(root, expected, rtol=2e-4, atol=2e-5 * np.abs(expected).max())
    assert float(error) < 1e-3


def test_padded_root_equals_the_unpadded_one():
    a = RNG.normal(size=(3, 3))
    matrix = jnp.asarray(a @ a.T + np.eye(3), jnp.float32)
    padded = jnp.pad(matrix, [(0, 4), (0, 4)])
    root, _ = roots.inverse_pth_root_newton(padded, 2, 3, roots.start_vector(7), 1e-6)
    np.testing.assert_allclose(root[:3, :3], _numpy_root(np.asarray(matrix), 2, 1e-6), rtol=1e-4)
    assert float(jnp.abs(root[3:]).max()) == 0.0


def test_merge_small_dims_and_blocks():
    assert merge_small_dims((1, 2, 512, 1, 2048, 1, 3, 4), 1024) == (1024, 2048, 12)
    assert merge_small_dims((1, 2, 768, 1, 2048), 1024) == (2, 768, 2048)
    assert merge_small_dims((1, 1), 8) == (1,)
    assert merge_small_dims((), 8) == ()
    layout = Blocks.of((5, 7), block_size=3, merge_bound=None)
    assert layout.sizes == ((3, 2), (3, 3, 1))
    assert layout.statistic_sizes() == [3, 3, 3, 3, 3, 1, 2, 3, 2, 3, 2, 1]
    x = jnp.arange(35.0).reshape(5, 7)
    pieces = layout.split(x)
    assert [p.shape for p in pieces] == [(3, 3), (3, 3), (3, 1), (2, 3), (2, 3), (2, 1)]
    np.testing.assert_array_equal(layout.join(pieces), x)


def _run(tx, grads_fn, steps=4, params=PARAMS, update=None):
    state = tx.init(params)
    update = update or jax.jit(tx.update)
    out = []
    for i in range(steps):
        u, state = update(grads_fn(i, params), state, params)
        params = jopt.apply_updates(params, u)
        out.append((u, state))
    return params, out


def test_roots_change_only_every_preconditioning_compute_steps():
    tx = jopt.contrib.scale_by_shampoo(block_size=4, preconditioning_compute_steps=3)
    grads = lambda i, p: jax.tree.map(lambda x: jnp.cos(x * (i + 1)), p)  # noqa: E731
    _, out = _run(tx, grads, steps=4)
    pre = [s.preconditioners for _, s in out]
    for a, b in zip(pre[0], pre[2], strict=True):  # steps 1 and 2 keep step 0's roots
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(pre[2], pre[3], strict=True))


def test_a_failed_root_keeps_the_previous_one():
    tx = jopt.contrib.scale_by_shampoo(block_size=4, inverse_failure_threshold=1e-30)
    grads = lambda i, p: jax.tree.map(lambda x: jnp.cos(x * (i + 1)), p)  # noqa: E731
    _, out = _run(tx, grads, steps=2)
    for root in out[-1][1].preconditioners:
        np.testing.assert_array_equal(root, np.eye(root.shape[0]))


DEGENERATE = {
    "zero": lambda i, p: jax.tree.map(jnp.zeros_like, p),
    "rank_one": lambda i, p: {
        "w": jnp.outer(jnp.arange(6.0), jnp.ones(4)) * (i + 1),
        "b": jnp.asarray([1.0, 0.0, 0.0]),
        "s": 0.0,
    },
}


@pytest.mark.parametrize("eigh", [False, True])
@pytest.mark.parametrize("graft_type", ["sgd", "adagrad", "rmsprop_normalized"])
def test_no_nan_on_degenerate_gradients(graft_type, eigh):
    tx = jopt.contrib.shampoo(
        0.1, block_size=4, start_preconditioning_step=1, graft_type=graft_type, eigh=eigh
    )
    update = jax.jit(tx.update)  # one program for both kinds of gradient
    for kind in sorted(DEGENERATE):
        params, out = _run(tx, DEGENERATE[kind], steps=3, update=update)
        for leaf in jax.tree.leaves((params, out)):
            assert bool(jnp.all(jnp.isfinite(leaf))), (kind, leaf)
        if kind == "zero":
            assert_trees_close(params, PARAMS, rtol=0, atol=0)


def test_bfloat16_params_keep_their_dtype_and_roots_stay_float32():
    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.bfloat16), PARAMS)
    tx = jopt.contrib.shampoo(0.05, block_size=4, start_preconditioning_step=1)
    grads = lambda i, p: jax.tree.map(lambda x: jnp.sin(x) + 0.1 * i, p)  # noqa: E731
    new, out = _run(tx, grads, steps=3, params=params)
    updates, state = out[-1]
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves((new, updates)))
    assert all(m.dtype == jnp.float32 for m in state[0].statistics + state[0].preconditioners)
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(state[0].momentum))
    f32, _ = _run(tx, grads, steps=3, params=PARAMS)
    assert_trees_close(jax.tree.map(lambda x: x.astype(jnp.float32), new), f32, atol=0.05)


def _mlp_loss(params, batch):
    hidden = jnp.tanh(batch["x"] @ params["w1"] + params["b1"])
    return jnp.mean((hidden @ params["w2"] - batch["y"]) ** 2)


BATCH = {
    "x": jnp.asarray(RNG.normal(size=(32, 16)), jnp.float32),
    "y": jnp.asarray(RNG.normal(size=(32, 4)), jnp.float32),
}


def _state():
    rng = np.random.default_rng(1)
    params = {
        "w1": jnp.asarray(rng.normal(size=(16, 8)) * 0.3, jnp.float32),
        "b1": jnp.zeros(8, jnp.float32),
        "w2": jnp.asarray(rng.normal(size=(8, 4)) * 0.3, jnp.float32),
    }
    tx = jopt.contrib.shampoo(
        0.05, block_size=8, start_preconditioning_step=1, preconditioning_compute_steps=2,
        graft_type="adagrad", merge_small_dims_block_size=8, matrix_epsilon=1e-3,
    )  # fmt: skip
    return TrainState.create(params, tx)


@pytest.mark.parametrize("layout", ["one_device", "data_parallel", "fully_sharded"])
def test_sharded_steps_equal_one_device(layout):
    step = make_train_step(_mlp_loss)
    state = jax.device_put(_state(), jax.devices()[0])
    for _ in range(3):
        state, _ = step(state, BATCH)
    if layout == "one_device":
        return
    mesh = make_mesh() if layout == "data_parallel" else make_mesh({"data": 2, "model": 4})
    axis = None if layout == "data_parallel" else "model"
    sharded, shardings = create_sharded_state(_state, mesh, axis=axis, min_size=32)
    step = make_train_step(_mlp_loss, state_sharding=shardings, batch_sharding=batch_sharding(mesh))
    for _ in range(3):
        sharded, _ = step(sharded, shard_batch(BATCH, mesh))
    assert_trees_close(sharded.params, state.params, rtol=1e-5, atol=1e-6)
    momentum = sharded.opt_state[0].momentum["w1"]
    assert momentum.sharding.is_equivalent_to(shardings.params["w1"], 2)


def test_fit_lowers_the_loss():
    data = Batches(jax.tree.map(np.asarray, BATCH), batch_size=8, seed=0)
    state = _state()
    before = float(_mlp_loss(state.params, BATCH))
    result = fit(state, make_train_step(_mlp_loss), data, epochs=3, progress=False)
    assert float(_mlp_loss(result.state.params, BATCH)) < 0.7 * before


def test_graft_type_takes_precondition_opts_enum_member():
    grafting = enum.IntEnum("GraftingType", "NONE SGD ADAGRAD RMSPROP RMSPROP_NORMALIZED")
    by_enum = jopt.contrib.scale_by_shampoo(block_size=4, graft_type=grafting.RMSPROP_NORMALIZED)
    by_name = jopt.contrib.scale_by_shampoo(block_size=4, graft_type="rmsprop_normalized")
    grads = lambda i, p: jax.tree.map(jnp.cos, p)  # noqa: E731
    assert_trees_close(_run(by_enum, grads, 2)[0], _run(by_name, grads, 2)[0], rtol=0, atol=0)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="graft_type must be one of"):
        jopt.contrib.scale_by_shampoo(graft_type="adam")
    with pytest.raises(ValueError, match="block_size"):
        jopt.contrib.scale_by_shampoo(block_size=-1)
    with pytest.raises(ValueError, match="preconditioning_compute_steps"):
        jopt.contrib.scale_by_shampoo(preconditioning_compute_steps=0)
    with pytest.raises(ValueError, match="beta2"):
        jopt.contrib.scale_by_shampoo(beta2=0.0)
    with pytest.raises(ValueError, match="params"):
        tx = jopt.contrib.scale_by_shampoo(weight_decay=0.1)
        tx.update(PARAMS, tx.init(PARAMS))
