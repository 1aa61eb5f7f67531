"""Weight decay and proximal L1 / elastic net against NumPy, and exact sparsity in training."""

import jax
import jax.numpy as jnp
import numpy as np

import jopt


def _soft_threshold(z, t):
    return np.sign(z) * np.maximum(np.abs(z) - t, 0.0)


def _schedule(step):
    return 0.1 / (1.0 + step)


def test_l1_proximal_step_matches_numpy_and_schedule_advances():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 5)).astype(np.float32)
    tx = jopt.chain(jopt.sgd(_schedule), jopt.add_l1_proximal(0.5, _schedule))
    params, state = {"w": jnp.asarray(w)}, None
    state = tx.init(params)
    for step in range(3):
        g = rng.normal(size=w.shape).astype(np.float32)
        updates, state = tx.update({"w": jnp.asarray(g)}, state, params)
        params = jopt.apply_updates(params, updates)
        lr = 0.1 / (1.0 + step)
        w = _soft_threshold(w - lr * g, lr * 0.5)
        np.testing.assert_allclose(np.asarray(params["w"]), w, rtol=1e-6, atol=1e-7)
    assert int(state[1].count) == 3


def test_elastic_net_proximal_step_matches_numpy():
    rng = np.random.default_rng(1)
    w = rng.normal(size=7).astype(np.float32)
    u = rng.normal(size=7).astype(np.float32) * 0.3
    tx = jopt.add_elastic_net_proximal(l1_strength=0.4, l2_strength=2.0, learning_rate=0.25)
    out, _ = tx.update({"w": jnp.asarray(u)}, tx.init({"w": w}), {"w": jnp.asarray(w)})
    expected = _soft_threshold(w + u, 0.25 * 0.4) / (1 + 0.25 * 2.0) - w
    np.testing.assert_allclose(np.asarray(out["w"]), expected, rtol=1e-6, atol=1e-7)


def test_proximal_gives_exact_zeros_and_keeps_dtype():
    params = {"w": jnp.asarray([0.05, -0.02, 1.0], jnp.bfloat16)}
    tx = jopt.add_l1_proximal(1.0, 0.1)
    updates, _ = tx.update(jax.tree.map(jnp.zeros_like, params), tx.init(params), params)
    new = jopt.apply_updates(params, updates)
    assert updates["w"].dtype == jnp.bfloat16
    assert new["w"][0] == 0 and new["w"][1] == 0 and new["w"][2] == 0.8984375  # bf16(0.9)


def test_coupled_and_decoupled_decay_match_numpy():
    w = np.asarray([1.0, -2.0, 3.0], np.float32)
    g = np.asarray([0.5, 0.5, -1.0], np.float32)
    decoupled = jopt.chain(jopt.scale_by_rms(), jopt.add_decayed_weights(0.1),
                           jopt.scale_by_learning_rate(0.01))  # fmt: skip
    coupled = jopt.chain(jopt.add_decayed_weights(0.1), jopt.scale_by_rms(),
                         jopt.scale_by_learning_rate(0.01))  # fmt: skip
    d, _ = decoupled.update(jnp.asarray(g), decoupled.init(w), jnp.asarray(w))
    c, _ = coupled.update(jnp.asarray(g), coupled.init(w), jnp.asarray(w))
    rms = lambda x: x / np.sqrt(0.1 * x**2 + 1e-8)  # noqa: E731 - one RMSProp step from nu=0
    np.testing.assert_allclose(np.asarray(d), -0.01 * (rms(g) + 0.1 * w), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(c), -0.01 * rms(g + 0.1 * w), rtol=1e-5)


def _sparse_regression():
    rng = np.random.default_rng(0)
    n, d = 200, 20
    x = rng.normal(size=(n, d)).astype(np.float32)
    w_true = np.zeros(d, np.float32)
    w_true[[2, 7, 11]] = [1.5, -2.0, 1.0]
    y = x @ w_true + 0.05 * rng.normal(size=n).astype(np.float32)
    return jnp.asarray(x), jnp.asarray(y), w_true


def _train(tx, x, y, steps=300):
    def loss(w):
        return 0.5 * jnp.mean((x @ w - y) ** 2)

    @jax.jit
    def step(w, state):
        updates, state = tx.update(jax.grad(loss)(w), state, w)
        return jopt.apply_updates(w, updates), state

    w = jnp.zeros(x.shape[1])
    state = tx.init(w)
    for _ in range(steps):
        w, state = step(w, state)
    return np.asarray(w)


def test_proximal_l1_recovers_exact_sparsity_where_plain_training_does_not():
    x, y, w_true = _sparse_regression()
    lr = 0.1
    plain = _train(jopt.sgd(lr), x, y)
    l1 = _train(jopt.chain(jopt.sgd(lr), jopt.add_l1_proximal(0.05, lr)), x, y)
    net = _train(jopt.chain(jopt.sgd(lr), jopt.add_elastic_net_proximal(0.05, 0.01, lr)), x, y)
    support = w_true != 0
    assert np.all(plain != 0), "plain least squares should leave no weight exactly zero"
    for w in (l1, net):
        np.testing.assert_array_equal(w == 0, ~support)  # zeros exactly off the support
        np.testing.assert_allclose(w[support], w_true[support], atol=0.15)
