"""The contract itself: base transforms, apply_updates and interoperation."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from jopt.testing import assert_trees_close, nested_params


def test_apply_updates_keeps_dtype_and_none():
    params = {"a": jnp.ones(3, jnp.bfloat16), "b": None, "c": jnp.zeros(2)}
    updates = {"a": jnp.full(3, 0.5, jnp.float32), "b": None, "c": jnp.ones(2)}
    out = jopt.apply_updates(params, updates)
    assert out["a"].dtype == jnp.bfloat16 and out["b"] is None
    np.testing.assert_allclose(out["c"], np.ones(2))
    assert_trees_close(out, optax.apply_updates(params, updates))


def test_identity_set_to_zero_and_stateless():
    params = nested_params()
    grads = jax.tree.map(lambda x: 2 * x, params)
    out, state = jopt.identity().update(grads, jopt.identity().init(params))
    assert_trees_close(out, grads)
    assert state == jopt.EmptyState()
    zeros, _ = jopt.set_to_zero().update(grads, jopt.EmptyState())
    assert all(float(jnp.abs(z).sum()) == 0 for z in jax.tree.leaves(zeros))
    halve = jopt.stateless(lambda u, p: jax.tree.map(lambda x: x / 2, u))
    assert_trees_close(halve.update(grads, halve.init(params))[0], params)
    plus_param = jopt.stateless_with_tree_map(lambda u, p: u + p)
    assert_trees_close(
        plus_param.update(grads, jopt.EmptyState(), params)[0],
        jax.tree.map(lambda x: 3 * x, params),
    )


def test_extra_args_are_forwarded_or_dropped():
    seen = {}

    def update(updates, state, params=None, *, value=None, **extra):
        seen["value"] = value
        return updates, state

    needs_value = jopt.GradientTransformationExtraArgs(jopt.init_empty_state, update)
    plain = jopt.with_extra_args_support(jopt.identity())
    tx = jopt.chain(plain, needs_value)
    tx.update({"x": jnp.ones(2)}, tx.init({"x": jnp.ones(2)}), value=jnp.float32(3.0))
    assert float(seen["value"]) == 3.0
    assert jopt.with_extra_args_support(needs_value) is needs_value


def test_incremental_and_periodic_update():
    new, old = {"x": jnp.ones(2)}, {"x": jnp.zeros(2)}
    assert_trees_close(jopt.incremental_update(new, old, 0.25), {"x": jnp.full(2, 0.25)})
    assert_trees_close(jopt.periodic_update(new, old, jnp.asarray(4), 2), new)
    assert_trees_close(jopt.periodic_update(new, old, jnp.asarray(3), 2), old)


def test_static_args_are_kept_static_by_inject_hyperparams_and_refused_as_arrays():

    @jopt.static_args("block_size")
    def blocked_sgd(learning_rate=0.1, block_size=4):
        assert isinstance(block_size, int)  # never traced through jopt.inject_hyperparams
        return jopt.sgd(learning_rate)

    assert jopt.declared_static_args(blocked_sgd) == {"block_size"}
    tx = jopt.inject_hyperparams(blocked_sgd)(learning_rate=0.2, block_size=3)
    state = jax.jit(tx.init)({"w": jnp.ones(3)})
    assert set(state.hyperparams) == {"learning_rate"}
    with pytest.raises(
        TypeError, match=r"block_size fixes the structure.*static_args=\('block_size',\)"
    ):
        optax.inject_hyperparams(blocked_sgd)(learning_rate=0.2).init({"w": jnp.ones(3)})
    with pytest.raises(
        ValueError, match=r"static_args must name arguments of f, got unknown \['rank'\]"
    ):

        @jopt.static_args("rank")
        def f(learning_rate):
            return jopt.sgd(learning_rate)


def test_inexact_leaves_names_integer_and_non_array_leaves():
    from jopt import _check  # noqa: PLC0415

    with pytest.raises(TypeError, match=r"float leaves, got int32 at \['count'\]; freeze"):
        _check.inexact_leaves("params", {"count": jnp.arange(4), "w": jnp.ones(2)})
    with pytest.raises(TypeError, match=r"array leaves, got str 'x' at \['name'\]\[0\]"):
        _check.inexact_leaves("params", {"name": ["x"]})
