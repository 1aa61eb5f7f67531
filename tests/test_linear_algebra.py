"""Power iteration, inverse p-th roots, NNLS (against NumPy/SciPy and optax) and tree_map_params."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.optimize import nnls as scipy_nnls

import jopt


def _spd(n=5, seed=0):
    a = np.random.default_rng(seed).normal(size=(n, n))
    return jnp.asarray(a @ a.T + n * np.eye(n), jnp.float32)


def test_power_iteration_finds_the_largest_eigenpair():
    matrix = _spd()
    value, vector = jopt.power_iteration(matrix, num_iters=500)
    eigenvalues, eigenvectors = np.linalg.eigh(np.asarray(matrix, np.float64))
    np.testing.assert_allclose(value, eigenvalues[-1], rtol=1e-4)
    np.testing.assert_allclose(abs(np.dot(vector, eigenvectors[:, -1])), 1.0, rtol=1e-3)
    optax_value, _ = optax.power_iteration(matrix, num_iters=500)
    np.testing.assert_allclose(value, optax_value, rtol=1e-6)


def test_power_iteration_on_a_pytree_operator():
    diag = {"a": jnp.array([1.0, 4.0]), "b": jnp.array([2.0])}
    value, _ = jopt.power_iteration(
        lambda v: jax.tree.map(jnp.multiply, diag, v),
        v0=jax.tree.map(jnp.ones_like, diag),
        num_iters=300,
    )
    np.testing.assert_allclose(value, 4.0, rtol=1e-4)
    with pytest.raises(ValueError, match="v0"):
        jopt.power_iteration(lambda v: v)


@pytest.mark.parametrize("p", [1, 2, 4])
def test_matrix_inverse_pth_root(p):
    matrix = _spd(4, seed=p)
    root, error = jopt.matrix_inverse_pth_root(matrix, p, ridge_epsilon=0.0)
    w, v = np.linalg.eigh(np.asarray(matrix, np.float64))
    np.testing.assert_allclose(root, (v * w ** (-1.0 / p)) @ v.T, rtol=2e-3, atol=2e-4)
    theirs, _ = optax.matrix_inverse_pth_root(matrix, p, ridge_epsilon=0.0)
    np.testing.assert_allclose(root, theirs, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="p must be one of"):
        jopt.matrix_inverse_pth_root(matrix, 3)


def test_nnls_matches_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(8, 4)), rng.normal(size=8)
    x = jopt.nnls(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32), iters=3000)
    expected, _ = scipy_nnls(a, b)
    np.testing.assert_allclose(x, expected, atol=1e-4)
    assert bool(jnp.all(x >= 0))
    with pytest.raises(ValueError, match="b must have"):
        jopt.nnls(jnp.ones((3, 2)), jnp.ones(4), 10)


def test_tree_map_params_replaces_param_copies_only():
    params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
    tx = jopt.adam(1e-3)
    state = tx.init(params)
    specs = {"w": "W", "b": "B"}
    mapped = jopt.tree_map_params(
        tx, lambda _, spec: spec, state, specs, transform_non_params=lambda _: None
    )
    assert mapped[0].mu == specs and mapped[0].nu == specs and mapped[0].count is None
    theirs = optax.tree_map_params(
        optax.adam(1e-3),
        lambda _, spec: spec,
        optax.adam(1e-3).init(params),
        specs,
        transform_non_params=lambda _: None,
    )
    assert theirs[0].mu == mapped[0].mu


def test_multi_normal_matches_optax():
    loc, log_scale = jnp.array([0.5, -1.0]), jnp.array([0.1, -0.3])
    ours, theirs = jopt.multi_normal(loc, log_scale), optax.multi_normal(loc, log_scale)
    key = jax.random.key(0)
    np.testing.assert_allclose(ours.sample((3,), key), theirs.sample((3,), key), rtol=1e-6)
    x = jnp.array([[0.0, 1.0], [2.0, -1.0]])
    np.testing.assert_allclose(ours.log_prob(x), theirs.log_prob(x), rtol=1e-6)
    assert [p.shape for p in ours.params] == [(2,), (2,)]
