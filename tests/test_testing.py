"""jopt.testing catches what it promises to catch, and names it."""

import subprocess
import sys
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
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


def test_assert_trees_close_names_the_leaf_and_checks_dtypes():
    # PRNG keys compare by their data, NaNs in the same places are equal.
    tree = {"k": jax.random.key(0), "x": jnp.array([1.0, jnp.nan])}
    testing.assert_trees_close(tree, jax.tree.map(lambda x: x.copy(), tree))
    with pytest.raises(AssertionError, match=r"trees differ: .*'a/b'"):
        testing.assert_trees_close({"a": {"b": jnp.ones(2)}}, {"a": {"b": jnp.ones(2) * 1.01}})
    with pytest.raises(AssertionError, match=r"trees differ: .*bfloat16"):
        testing.assert_trees_close({"a": jnp.ones(2, jnp.bfloat16)}, {"a": jnp.ones(2)})
    with pytest.raises(AssertionError, match="trees differ"):
        testing.assert_trees_close({"a": jnp.ones(2)}, {"b": jnp.ones(2)})


def test_nested_params_has_the_awkward_corners():
    params = testing.nested_params(jnp.bfloat16)
    assert params["empty"] == {} and isinstance(params["layers"][1], tuple)
    assert {x.ndim for x in jax.tree.leaves(params)} == {0, 1, 2}
    assert {x.dtype for x in jax.tree.leaves(params)} == {jnp.dtype(jnp.bfloat16)}
    testing.assert_trees_close(testing.nested_params(), testing.nested_params(), 0, 0)


def test_bumpy_loss_matches_its_formula():
    params = {"a": jnp.array([0.3, -1.2]), "b": jnp.array(2.0)}
    x, y = np.array([0.3, -1.2]), 2.0
    expected = np.sum(0.5 * x**2 + np.sin(3 * x) + 0.1 * x) + (y**2 + np.sin(3 * y) + 0.1 * y)
    np.testing.assert_allclose(testing.bumpy_loss(params), expected, rtol=1e-6)


def test_a_loss_drives_both_runs_and_reaches_a_line_search():
    # The gradients are the loss's at each run's own params; a 1% larger step is named.
    with pytest.raises(AssertionError, match=r"eager step 0: updates differ"):
        testing.assert_matches(
            jopt.sgd(0.1), optax.sgd(0.101), PARAMS, steps=2, jit=False, loss=testing.bumpy_loss
        )
    line_search = optax.scale_by_backtracking_linesearch(max_backtracking_steps=5)
    testing.assert_matches(
        jopt.chain(jopt.scale(-1.0), jopt.scale_by_backtracking_linesearch(5)),
        optax.chain(optax.scale(-1.0), line_search),
        PARAMS,
        steps=3,
        jit="both",
        loss=testing.bumpy_loss,
        loss_args=True,
    )


def test_state_layout_names_a_different_state_class():
    class OtherState(NamedTuple):
        trace: Any

    tx = jopt.trace(decay=0.9)
    ref = jopt.GradientTransformation(
        lambda p: OtherState(*tx.init(p)),
        lambda g, s, p=None: (lambda u, s: (u, OtherState(*s)))(*tx.update(g, s, p)),
    )
    testing.assert_matches(tx, ref, PARAMS, steps=2)  # the values agree
    with pytest.raises(AssertionError, match=r"(?s)step 0: state layouts differ.*OtherState"):
        testing.assert_matches(tx, ref, PARAMS, steps=2, state_layout=True)


def test_update_dtypes_can_be_left_out_of_the_comparison():
    bf16 = jax.tree.map(lambda x: x.astype(jnp.bfloat16), PARAMS)
    promoted = jopt.GradientTransformation(
        lambda p: (), lambda g, s, p=None: (jax.tree.map(lambda x: x.astype(jnp.float32), g), s)
    )
    with pytest.raises(AssertionError, match="updates differ"):
        testing.assert_matches(jopt.identity(), promoted, bf16, steps=1)
    testing.assert_matches(jopt.identity(), promoted, bf16, steps=1, update_dtypes=False)


def test_jopt_testing_is_an_attribute_that_loads_on_first_use():
    # As numpy.testing: `import jopt; jopt.testing...` works, and `import jopt` alone loads
    # neither jopt.testing nor its heavy dependencies (chex, hypothesis).
    code = (
        "import sys, jopt\n"
        "loaded = [m for m in ('jopt.testing', 'chex', 'hypothesis') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "assert 'testing' in dir(jopt)\n"
        "assert jopt.testing.check_transform is sys.modules['jopt.testing'].check_transform\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    with pytest.raises(AttributeError, match="no attribute 'tesitng'"):
        jopt.tesitng  # noqa: B018 - a misspelt name still raises
