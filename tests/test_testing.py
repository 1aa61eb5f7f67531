"""jopt.testing catches what it promises to catch, and names it."""

import jax
import jax.numpy as jnp
import optax
import pytest
from hypothesis import given, settings

import jopt
from jopt import testing

PARAMS = {"a": {"w": jnp.ones((3, 2))}, "b": [jnp.arange(3.0)]}


def test_assert_matches_passes_on_optax_adam():
    testing.assert_matches(jopt.adam(1e-3), optax.adam(1e-3), PARAMS, steps=5)


def test_a_small_difference_is_named_with_step_and_leaf():
    with pytest.raises(AssertionError, match=r"jit step 0: updates differ.*'a/w'"):
        testing.assert_matches(jopt.sgd(0.1), optax.sgd(0.1001), PARAMS, steps=3)


def test_a_divergence_after_five_steps_is_named():
    def late(tx):
        def update(g, s, p=None):
            u, s2 = tx.update(g, s[0], p)
            u = jax.tree.map(lambda x: jnp.where(s[1] >= 5, 2 * x, x), u)
            return u, (s2, s[1] + 1)

        return jopt.GradientTransformation(lambda p: (tx.init(p), jnp.zeros([], jnp.int32)), update)

    with pytest.raises(AssertionError, match=r"step 5: updates differ"):
        testing.assert_matches(late(jopt.sgd(0.1)), optax.sgd(0.1), PARAMS, steps=7, jit=False)


def test_state_differences_are_named():
    with pytest.raises(AssertionError, match=r"states differ: .*trace"):
        _differing_state()


def _differing_state():
    tx = jopt.trace(decay=0.9)
    ref = jopt.GradientTransformation(
        tx.init, lambda g, s, p=None: (g, jopt.TraceState(trace=jax.tree.map(jnp.zeros_like, g)))
    )
    testing.assert_matches(tx, ref, PARAMS, steps=1)


def _hand_written(cast=False, grow=False):
    """Momentum by hand; optionally broken: casts updates to float32, or grows its state."""

    def init(params):
        return jax.tree.map(jnp.zeros_like, params)

    def update(grads, state, params=None):
        state = jax.tree.map(lambda m, g: 0.9 * m + g, state, grads)
        if grow:
            state = jax.tree.map(lambda m: jnp.concatenate([m.reshape(-1), m.reshape(-1)]), state)
        out = jax.tree.map(lambda m: m.astype(jnp.float32) if cast else m, state)
        return out, state

    return jopt.GradientTransformation(init, update)


def test_check_transform_passes_a_correct_hand_written_transform():
    testing.check_transform(_hand_written(), PARAMS, chains=(optax.chain,))


def test_check_transform_names_a_dtype_change():
    bf16 = jax.tree.map(lambda x: x.astype(jnp.bfloat16), PARAMS)
    with pytest.raises(AssertionError, match=r"update dtype differs .*\['a'\]\['w'\]"):
        testing.check_transform(_hand_written(cast=True), bf16)


def test_check_transform_names_an_unstable_state():
    with pytest.raises(AssertionError, match="state is unstable"):
        testing.check_transform(_hand_written(grow=True), PARAMS)


@settings(max_examples=5, deadline=None)
@given(testing.pytree_pairs(dtypes=(jnp.float32,)))
def test_strategies_draw_matching_pairs(pair):
    params, grads = pair
    assert jax.tree.structure(params) == jax.tree.structure(grads)
    assert all(
        p.shape == g.shape
        for p, g in zip(jax.tree.leaves(params), jax.tree.leaves(grads), strict=True)
    )
