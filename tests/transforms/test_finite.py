"""apply_if_finite skips non-finite steps like optax.apply_if_finite, gives up after
max_consecutive_errors, keeps bfloat16 working, and validates its arguments."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt

GRADS = [1.0, np.nan, np.inf, np.nan, 2.0, np.nan, 0.5]


@pytest.mark.parametrize("max_errors", [0, 2])
def test_matches_optax_through_a_run_of_bad_steps(max_errors):
    params = {"w": jnp.ones(2)}
    states = []
    for lib in (jopt, optax):
        tx = lib.apply_if_finite(lib.sgd(0.1, momentum=0.9), max_errors)
        state, update = tx.init(params), jax.jit(tx.update)
        trail = []
        for g in GRADS:
            updates, state = update({"w": jnp.full(2, g)}, state, params)
            trail.append(
                (
                    np.asarray(updates["w"]),
                    int(state.notfinite_count),
                    int(state.total_notfinite),
                    bool(state.last_finite),
                )
            )
        states.append(trail)
    for ours, theirs in zip(*states, strict=True):
        np.testing.assert_array_equal(ours[0], theirs[0])
        assert ours[1:] == theirs[1:]
    assert states[0][-1][2] == 4


def test_skipped_step_keeps_float32_updates_of_a_bfloat16_model():
    """The inner optimizer returns float32 updates for bfloat16 gradients (float32 moments)."""
    params = {"w": jnp.ones(2, jnp.bfloat16)}
    tx = jopt.apply_if_finite(optax.adam(0.1, mu_dtype=jnp.float32), 3)
    state = tx.init(params)
    update = jax.jit(tx.update)
    for g in (1.0, np.nan, 1.0):
        updates, state = update({"w": jnp.full(2, g, jnp.bfloat16)}, state, params)
        assert updates["w"].dtype == jnp.float32
    assert int(state.total_notfinite) == 1


def test_max_consecutive_errors_must_be_a_non_negative_integer():
    with pytest.raises(ValueError, match="max_consecutive_errors must be an integer >= 0, got -1"):
        jopt.apply_if_finite(jopt.sgd(0.1), -1)
    with pytest.raises(TypeError, match="max_consecutive_errors must be an integer"):
        jopt.apply_if_finite(jopt.sgd(0.1), 2.5)


def test_inner_must_be_a_transform():
    with pytest.raises(TypeError, match="inner must be a GradientTransformation"):
        jopt.apply_if_finite(jopt.sgd, 2)


@pytest.mark.parametrize(
    "tree, expected",
    [
        ({"a": np.ones(3, np.float32), "b": np.array([1.0, np.inf], np.float32)}, False),
        ({"a": np.array([-np.inf], np.float16)}, False),
        ([np.float32(np.nan)], False),
        ({"big": np.full(4, 3e38, np.float32)}, True),  # a sum of the values would overflow
        ({"i": np.arange(3), "flag": np.array(True)}, True),  # integers are always finite
        ({}, True),
        ({"c": np.array([1 + 1j, complex(np.inf, 0)], np.complex64)}, False),
        ({"h": np.full(2, 60000, jnp.bfloat16)}, True),
    ],
)
def test_all_finite_is_numpys_answer_eager_and_jitted(tree, expected):
    # The one non-finite test of apply_if_finite and of fit's bad-step skipping.
    assert bool(jopt.tree.all_finite(tree)) is expected
    assert bool(jax.jit(jopt.tree.all_finite)(tree)) is expected
    reference = all(np.isfinite(np.asarray(x, np.complex128)).all() for x in jax.tree.leaves(tree))
    assert reference is expected
