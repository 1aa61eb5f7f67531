"""flatten runs the inner transform on one vector: optax's numbers, each leaf's dtype kept."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from jopt.testing import assert_trees_close, nested_params


def test_updates_match_optax_flatten():
    params = nested_params()
    grads = jax.tree.map(lambda p: jnp.sin(3.0 * p), params)
    results = []
    for lib in (jopt, optax):
        tx = lib.flatten(lib.adam(0.1))
        state = tx.init(params)
        for _ in range(3):
            updates, state = tx.update(grads, state, params)
        results.append(updates)
    assert_trees_close(results[0], results[1], rtol=1e-6, atol=1e-7)


def test_mixed_dtypes_return_to_each_leaf_dtype():
    params = {"a": jnp.ones(3, jnp.bfloat16), "b": jnp.ones((2, 2), jnp.float32)}
    tx = jopt.flatten(jopt.sgd(0.5))
    updates, _ = tx.update(params, tx.init(params), params)
    assert updates["a"].dtype == jnp.bfloat16 and updates["b"].dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(updates["b"]), -0.5)


def test_empty_tree_and_bad_inner():
    tx = jopt.flatten(jopt.sgd(0.1))
    updates, _ = tx.update({}, tx.init({}), {})
    assert updates == {}
    with pytest.raises(TypeError, match="inner must be a GradientTransformation"):
        jopt.flatten(jopt.sgd)
