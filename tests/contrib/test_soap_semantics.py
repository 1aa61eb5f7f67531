"""Each semantic of soap.py that jopt.contrib.scale_by_soap copies, against NumPy; and what
makes it practical: float32 linear algebra, degenerate gradients, lax.cond, masks, fit,
sharding on 8 fake CPU devices, memory, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jopt
from jopt.contrib import _soap_bases
from jopt.testing import assert_trees_close

B1, B2, EPS, LR = 0.9, 0.95, 1e-8, 0.1
RNG = np.random.default_rng(11)


def _grads(shape, n, rng=RNG):
    return [rng.normal(size=shape).astype(np.float32) for _ in range(n)]


def _calls(tx, params, grads):
    """Updates and states of successive calls, jitted once (one leaf "w" per call)."""
    update = jax.jit(tx.update)
    state, out = tx.init(params), []
    for g in grads:
        tree = jax.tree.map(lambda _, g=g: jnp.asarray(g), params)
        updates, state = update(tree, state, params)
        out.append((updates, state))
    return out


def _soap(**kwargs):
    return jopt.contrib.scale_by_soap(b1=B1, b2=B2, eps=EPS, **kwargs)


def _adam_direction(m, v, t, b1=B1, b2=B2):
    return np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + EPS)


def test_first_basis_is_eigh_of_the_factor_in_descending_order():
    (g,) = _grads((5, 5), 1)
    [(_, state)] = _calls(_soap(), {"w": jnp.zeros((5, 5))}, [g])
    left = (1 - B2) * g.astype(np.float64) @ g.T
    np.testing.assert_allclose(state.factors["w"][0], left, rtol=1e-5, atol=1e-7)
    q = np.asarray(state.bases["w"][0], np.float64)
    values = np.linalg.eigvalsh(left)[::-1]
    np.testing.assert_allclose(np.diag(q.T @ left @ q), values, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(q.T @ q, np.eye(5), atol=1e-6)


def test_refresh_is_one_power_iteration_then_qr_with_columns_and_nu_resorted():
    f = 3
    grads = _grads((6, 4), f + 1)
    runs = _calls(_soap(precondition_frequency=f), {"w": jnp.zeros((6, 4))}, grads)
    before, after = runs[f - 1][1], runs[f][1]  # call f is step t = f: a refresh
    g = grads[f].astype(np.float64)
    ql, qr = (np.asarray(q, np.float64) for q in before.bases["w"])
    rotated = ql.T @ g @ qr
    nu = B2 * np.asarray(before.nu["w"], np.float64) + (1 - B2) * rotated**2
    for axis, (old, factor) in enumerate(zip((ql, qr), after.factors["w"], strict=True)):
        factor = np.asarray(factor, np.float64)
        order = np.argsort(-np.diag(old.T @ factor @ old), kind="stable")
        expected = np.linalg.qr(factor @ old[:, order])[0]
        got = np.asarray(after.bases["w"][axis], np.float64)
        np.testing.assert_allclose(np.abs(got.T @ expected), np.eye(len(order)), atol=1e-5)
        nu = np.take(nu, order, axis=axis)
    np.testing.assert_allclose(after.nu["w"], nu, rtol=1e-5, atol=1e-9)
    # Between refreshes the bases do not move.
    kept = zip(runs[1][1].bases["w"], runs[2][1].bases["w"], strict=True)
    assert all(np.array_equal(a, b) for a, b in kept)


def test_mu_lives_in_the_rotated_basis_and_is_reprojected_when_it_changes():
    grads = _grads((5, 3), 9)
    runs = _calls(_soap(precondition_frequency=3), {"w": jnp.zeros((5, 3))}, grads)
    raw = np.zeros((5, 3))
    for t in range(1, 9):  # the first call is not an Adam step
        raw = B1 * raw + (1 - B1) * grads[t]
        state = runs[t][1]
        back = _soap_bases.rotate(state.mu["w"], state.bases["w"], (0, 1), back=True)
        np.testing.assert_allclose(back, raw, rtol=1e-4, atol=1e-6)
    assert not np.allclose(state.mu["w"], raw, atol=1e-3)


def test_bias_correction_counts_from_the_first_real_update_and_scalars_are_adam():
    params = {"v": jnp.zeros(4), "s": jnp.zeros(())}  # no factors: Adam exactly
    grads = [{"v": g, "s": g[0]} for g in _grads((4,), 3)]
    update, tx = None, _soap()
    state = tx.init(params)
    update = jax.jit(tx.update)
    m = v = 0.0
    for t, g in enumerate(grads):
        updates, state = update(jax.tree.map(jnp.asarray, g), state, params)
        if t == 0:
            assert all(np.all(np.asarray(u) == 0) for u in jax.tree.leaves(updates))
            continue
        m = B1 * m + (1 - B1) * g["v"]
        v = B2 * v + (1 - B2) * g["v"] ** 2
        np.testing.assert_allclose(updates["v"], _adam_direction(m, v, t), rtol=1e-5)
        np.testing.assert_allclose(updates["s"], _adam_direction(m, v, t)[0], rtol=1e-5)


def test_weight_decay_multiplies_the_stepped_params_from_the_second_call():
    params = {"v": jnp.asarray(RNG.normal(size=4), jnp.float32)}
    tx = jopt.contrib.soap(learning_rate=LR, b1=B1, b2=B2, eps=EPS, weight_decay=0.5)
    grads = _grads((4,), 2)
    update = jax.jit(tx.update)
    state = tx.init(params)
    p0 = np.asarray(params["v"])
    u, state = update({"v": jnp.asarray(grads[0])}, state, params)
    p1 = jopt.apply_updates(params, u)
    np.testing.assert_array_equal(p1["v"], p0)
    u, state = update({"v": jnp.asarray(grads[1])}, state, p1)
    direction = _adam_direction((1 - B1) * grads[1], (1 - B2) * grads[1] ** 2, 1)
    expected = (p0 - LR * direction) * (1 - LR * 0.5)
    np.testing.assert_allclose(jopt.apply_updates(p1, u)["v"], expected, rtol=1e-6)


def test_axes_longer_than_max_precond_dim_are_not_rotated():
    grads = _grads((3, 12), 2)
    runs = _calls(_soap(max_precond_dim=5), {"w": jnp.zeros((3, 12))}, grads)
    (q,) = runs[0][1].bases["w"]
    assert q.shape == (3, 3)
    q = np.asarray(q, np.float64)
    rotated = q.T @ grads[1]
    expected = q @ _adam_direction((1 - B1) * rotated, (1 - B2) * rotated**2, 1)
    np.testing.assert_allclose(runs[1][0]["w"], expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "sizes"),
    [({}, ()), ({"precondition_1d": True}, (5,)),
     ({"precondition_1d": True, "max_precond_dim": 4}, ())],
)  # fmt: skip
def test_one_dimensional_leaves_get_a_factor_only_with_precondition_1d(kwargs, sizes):
    state = _soap(**kwargs).init({"b": jnp.zeros(5)})
    assert tuple(f.shape[0] for f in state.factors["b"]) == sizes


def test_merge_dims_follows_soap_py():
    merge = _soap_bases.merged_shape
    assert merge((2, 3, 16), 8) == (6, 16)
    assert merge((4, 8, 6), 8) == (4, 8, 6)
    assert merge((20, 30), 10000) == (600,)
    assert merge((3, 1), 8) == (3,)
    plan = _soap_bases.layout((2, 3, 3, 4), 8, True, False, channels_last=True)
    assert plan.permutation == (0, 3, 1, 2) and plan.shape == (8, 3, 3)


def test_bfloat16_params_keep_their_dtype_and_the_linear_algebra_is_float32():
    params = {"w": jnp.zeros((6, 4), jnp.bfloat16)}
    grads = [g.astype(jnp.bfloat16) for g in _grads((6, 4), 7)]
    tx = _soap(precondition_frequency=3)
    runs = _calls(tx, params, grads)
    updates, state = runs[-1]
    assert updates["w"].dtype == jnp.bfloat16
    assert {x.dtype for x in jax.tree.leaves((state.factors, state.bases))} == {
        np.dtype(np.float32)
    }
    assert state.mu["w"].dtype == state.nu["w"].dtype == jnp.float32
    assert np.isfinite(np.asarray(updates["w"], np.float32)).all()


@pytest.mark.parametrize("normalize_grads", [False, True])
def test_no_nan_on_zero_or_rank_deficient_gradients(normalize_grads):
    params = {"w": jnp.ones((8, 8)), "v": jnp.ones(3)}
    tx = jopt.contrib.soap(precondition_frequency=4, precondition_1d=True,
                           normalize_grads=normalize_grads, weight_decay=0.0)  # fmt: skip
    update = jax.jit(tx.update)
    rank_one = np.outer(np.arange(8.0), np.ones(8)).astype(np.float32)
    for grads in ({"w": jnp.zeros((8, 8)), "v": jnp.zeros(3)},
                  {"w": jnp.asarray(rank_one), "v": jnp.asarray([1.0, 0.0, 0.0])}):  # fmt: skip
        state = tx.init(params)
        for _ in range(10):  # two refreshes
            updates, state = update(grads, state, params)
            assert jopt.tree.all_finite((updates, state)), grads
        if not np.any(np.asarray(grads["w"])):
            assert all(np.all(np.asarray(u) == 0) for u in jax.tree.leaves(updates))


def test_refresh_is_a_lax_cond_in_one_program():
    params = {"w": jnp.zeros((4, 4))}
    tx = jopt.contrib.soap(precondition_frequency=2)
    jaxpr = str(jax.make_jaxpr(tx.update)(params, tx.init(params), params))
    assert jaxpr.count("cond[") >= 2  # the first call, and the refresh
    traces = []

    @jax.jit
    def step(state):
        traces.append(None)
        return tx.update(params, state, params)[1]

    state = tx.init(params)
    for _ in range(5):
        state = step(state)
    assert len(traces) == 1 and int(state[0].count) == 5


def test_masked_leaves_pass_through_and_the_rest_equal_plain_soap():
    params = {"w": jnp.ones((4, 4)), "b": jnp.ones(4)}
    masked = jopt.masked(_soap(), {"w": True, "b": False})
    plain = _soap()
    masked_update, plain_update = jax.jit(masked.update), jax.jit(plain.update)
    s_masked, s_plain = masked.init(params), plain.init({"w": params["w"]})
    for g in _grads((4, 4), 3):  # new gradients each call (see _sharding_problem)
        grads = {"w": jnp.asarray(g), "b": jnp.arange(4.0)}
        u_masked, s_masked = masked_update(grads, s_masked, params)
        u_plain, s_plain = plain_update({"w": grads["w"]}, s_plain)
    np.testing.assert_array_equal(u_masked["b"], grads["b"])
    np.testing.assert_allclose(u_masked["w"], u_plain["w"], rtol=1e-5, atol=1e-7)


def _state_floats(params, **kwargs):
    state = jopt.contrib.scale_by_soap(**kwargs).init(params)
    return sum(x.size for x in jax.tree.leaves(state)) - 1  # less the count


def test_memory_per_parameter_is_two_moments_plus_two_squares_per_factor():
    shapes = [(16, 48), (48,), (4, 8, 6), (8, 8)]
    params = {str(i): jnp.zeros(s) for i, s in enumerate(shapes)}
    n = sum(int(np.prod(s)) for s in shapes)
    factors = 16**2 + 48**2 + 4**2 + 8**2 + 6**2 + 2 * 8**2
    assert _state_floats(params) == 2 * n + 2 * factors
    assert round(_state_floats(params) / n, 2) == 7.23


def test_fit_trains_a_small_model():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype(np.float32)
    data = {"x": x, "y": (x @ rng.normal(size=(6, 3))).astype(np.float32)}
    params = {"w": jnp.zeros((6, 3)), "b": jnp.zeros(3)}

    def loss(p, batch):
        return jnp.mean((batch["x"] @ p["w"] + p["b"] - batch["y"]) ** 2)

    state = jopt.train.TrainState.create(params, jopt.contrib.soap(0.05, precondition_frequency=4))
    step = jopt.train.make_train_step(loss)
    result = jopt.train.fit(state, step, jopt.train.Batches(data, batch_size=16, seed=0),
                            epochs=4, progress=False)  # fmt: skip
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < 0.5 * losses[0] and np.isfinite(losses).all()


BAD = [
    ({"b1": 1.0}, "b1", ValueError),
    ({"b2": -0.1}, "b2", ValueError),
    ({"shampoo_beta": 1.0}, "shampoo_beta", ValueError),
    ({"eps": -1.0}, "eps", ValueError),
    ({"precondition_frequency": 0}, "precondition_frequency", ValueError),
    ({"precondition_frequency": 2.5}, "precondition_frequency", TypeError),
    ({"max_precond_dim": 0}, "max_precond_dim", ValueError),
    ({"merge_dims": 1}, "merge_dims", TypeError),
    ({"precondition_1d": "yes"}, "precondition_1d", TypeError),
    ({"normalize_grads": None}, "normalize_grads", TypeError),
    ({"correct_bias": 0}, "correct_bias", TypeError),
    ({"data_format": "NHWC"}, "data_format", ValueError),
    ({"learning_rate": -1.0}, "learning_rate", ValueError),
    ({"weight_decay": -0.1}, "weight_decay", ValueError),
]


@pytest.mark.parametrize(("kwargs", "name", "error"), BAD, ids=[b[1] for b in BAD])
def test_bad_hyperparameters_name_the_argument(kwargs, name, error):
    with pytest.raises(error, match=name):
        jopt.contrib.soap(**kwargs)


def test_a_flat_tree_is_refused_by_name():
    flat = jopt.FlatTree.from_tree({"w": jnp.zeros((3, 3))})
    with pytest.raises(ValueError, match="scale_by_soap cannot run on a FlatTree"):
        jopt.contrib.scale_by_soap().init(flat)


def _sharding_problem():
    """Square layers, a batch wider than them and a new batch each step.

    Every factor is full-rank, and the second gradient differs from the first: with one
    fixed batch the second gradient is diagonal in the first bases (its SVD), so its
    off-diagonal entries are rounding noise, and Adam's first step (+-lr on every entry)
    turns another summation order into an O(lr) difference, in soap.py as here.
    """
    rng = np.random.default_rng(1)
    params = {"w1": jnp.asarray(rng.normal(size=(8, 8)) * 0.3, jnp.float32),
              "b1": jnp.zeros(8, jnp.float32),
              "w2": jnp.asarray(rng.normal(size=(8, 8)) * 0.3, jnp.float32)}  # fmt: skip
    batches = [{"x": jnp.asarray(rng.normal(size=(32, 8)), jnp.float32),
                "y": jnp.asarray(rng.normal(size=(32, 8)), jnp.float32)}
               for _ in range(7)]  # fmt: skip

    def loss(p, b):
        return jnp.mean((jnp.tanh(b["x"] @ p["w1"] + p["b1"]) @ p["w2"] - b["y"]) ** 2)

    return params, batches, loss


@pytest.mark.parametrize("axis", [None, "model"])  # data parallel, fully sharded
def test_sharded_steps_on_8_devices_equal_one_device(axis):
    from jopt.train import TrainState, make_train_step, sharding  # noqa: PLC0415

    params, batches, loss = _sharding_problem()

    def create():
        return TrainState.create(params, jopt.contrib.soap(0.05, precondition_frequency=3))

    state = jax.device_put(create(), jax.devices()[0])
    step = make_train_step(loss)
    mesh = sharding.make_mesh({"data": 2, "model": 4})
    sharded, shardings = sharding.create_sharded_state(create, mesh, axis=axis, min_size=32)
    sharded_step = make_train_step(
        loss, state_sharding=shardings, batch_sharding=sharding.batch_sharding(mesh)
    )
    for batch in batches:  # two refreshes
        state, _ = step(state, batch)
        sharded, _ = sharded_step(sharded, sharding.shard_batch(batch, mesh))
    # Adam's division by sqrt(v) amplifies the other summation order's rounding (3e-6 on
    # params of 0.1 after 7 steps at lr 0.05); AdamW's registry runs get 1e-5 / 1e-6.
    assert_trees_close(sharded.params, state.params, rtol=1e-4, atol=2e-5)
    if axis is not None:
        assert sharded.opt_state[0].mu["w1"].sharding.spec == jax.sharding.PartitionSpec(axis, None)


def test_an_injected_shampoo_beta_equals_the_plain_one():
    params = {"w": jnp.ones((4, 4))}
    static = ("precondition_frequency", "max_precond_dim")
    injected = jopt.inject_hyperparams(jopt.contrib.soap, static_args=static)(
        learning_rate=0.01, shampoo_beta=0.9, precondition_frequency=2
    )
    plain = jopt.contrib.soap(0.01, shampoo_beta=0.9, precondition_frequency=2)
    for tx in (injected, plain):
        state, update = tx.init(params), jax.jit(tx.update)
        for g in _grads((4, 4), 5, np.random.default_rng(5)):
            updates, state = update({"w": jnp.asarray(g)}, state, params)
        if tx is injected:
            expected = updates
    np.testing.assert_allclose(expected["w"], updates["w"], rtol=1e-4, atol=1e-7)
