"""conditionally_transform / conditionally_mask run the inner transform at the chosen
steps exactly like optax, forward extra arguments on request and validate their inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt


@pytest.mark.parametrize("name", ["conditionally_transform", "conditionally_mask"])
def test_trail_matches_optax_and_inner_state_moves_only_when_run(name):
    params = {"w": jnp.ones(2)}
    trails = []
    for lib in (jopt, optax):
        tx = getattr(lib, name)(lib.trace(decay=0.5), lambda step: step % 3 == 1)
        state, update, trail = tx.init(params), jax.jit(tx.update), []
        for i in range(6):
            updates, state = update({"w": jnp.full(2, float(i + 1))}, state)
            trail.append(np.asarray(updates["w"]))
        trails.append((np.stack(trail), int(state.step)))
    np.testing.assert_array_equal(trails[0][0], trails[1][0])
    assert trails[0][1] == trails[1][1] == 6
    # Steps 1 and 4 run the trace: 2, then 5 + 0.5 * 2; the others pass or mask.
    expected_4 = 5.0 + 0.5 * 2.0
    assert trails[0][0][4][0] == expected_4
    assert trails[0][0][0][0] == (1.0 if name == "conditionally_transform" else 0.0)


def test_extra_args_reach_the_condition_when_forwarded():
    params = {"w": jnp.ones(2)}
    tx = jopt.conditionally_mask(
        jopt.sgd(1.0), lambda step, value: value < 1.0, forward_extra_args=True
    )
    state = tx.init(params)
    updates, state = tx.update(params, state, params, value=jnp.asarray(2.0))
    np.testing.assert_array_equal(updates["w"], 0.0)
    updates, state = tx.update(params, state, params, value=jnp.asarray(0.5))
    np.testing.assert_array_equal(updates["w"], -1.0)


def test_condition_must_return_a_scalar():
    tx = jopt.conditionally_transform(jopt.sgd(0.1), lambda step: jnp.array([True, False]))
    params = {"w": jnp.ones(2)}
    with pytest.raises(ValueError, match="should_transform_fn must return a scalar"):
        tx.update(params, tx.init(params), params)


@pytest.mark.parametrize("name", ["conditionally_transform", "conditionally_mask"])
def test_bad_arguments_name_the_argument(name):
    factory = getattr(jopt, name)
    with pytest.raises(TypeError, match="should_transform_fn must be a function"):
        factory(jopt.sgd(0.1), True)
    with pytest.raises(TypeError, match="forward_extra_args must be True or False"):
        factory(jopt.sgd(0.1), lambda s: True, forward_extra_args="yes")
    with pytest.raises(TypeError, match="inner must be a GradientTransformation"):
        factory(jopt.sgd, lambda s: True)
