"""Everyday mistakes at jopt's boundaries, each refused with an error that names it.

The rows of the training layer (fit, TrainState, train steps, EarlyStopping) are tested
beside those modules in tests/train.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jopt

PARAMS = {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}
GRADS = {"w": jnp.full((3, 2), 0.5), "b": jnp.ones(2)}


@pytest.mark.parametrize(
    "build, error, text",
    [
        (lambda: jopt.adam(1e-3, b1=jopt.constant_schedule(0.9)), TypeError,
         r"b1 must be a number, not a schedule.*inject_hyperparams"),
        (lambda: jopt.clip_by_global_norm(jopt.exponential_decay(1.0, 10, 0.5)), TypeError,
         r"max_norm must be a number, not a schedule"),
        (lambda: jopt.clip(jopt.constant_schedule(0.5)), TypeError,
         r"max_delta must be a number, not a schedule"),
        (lambda: jopt.sgd(jopt.exponential_decay), TypeError,
         r"learning_rate must be a number or a schedule step -> value, got exponential_decay, "
         r"which takes 3 arguments: .*passed uncalled; call it"),
        (lambda: jopt.sgd(jopt.linear_schedule(-0.1, -0.2, 10)), ValueError,
         r"learning_rate \(a schedule\) at step 0 must be >= 0, got -0.1"),
        (lambda: jopt.sgd(jopt.linear_schedule(0.1, -0.2, 10)), ValueError,
         r"learning_rate \(a schedule\) at step 1000 must be >= 0"),
        (lambda: jopt.adamw(1e-3, weight_decay=jopt.linear_schedule(1e-4, -1e-4, 100)),
         ValueError, r"weight_decay \(a schedule\) at step 1000 must be >= 0"),
        (lambda: jopt.sgd(lambda step: jnp.ones(2)), TypeError,
         r"learning_rate must be a schedule returning a scalar, got shape \(2,\)"),
        (lambda: jopt.sgd(lambda step: 1.0 / 0.0), TypeError,
         r"learning_rate is a schedule that fails at step 0 \(ZeroDivisionError"),
    ],
)  # fmt: skip
def test_hyperparameters_name_a_wrong_schedule_at_construction(build, error, text):
    with pytest.raises(error, match=text):
        build()


def _run(tx, steps=3):
    params, state = PARAMS, tx.init(PARAMS)
    for _ in range(steps):
        updates, state = tx.update(GRADS, state, params)
        params = jopt.apply_updates(params, updates)
    return params


@pytest.mark.parametrize(
    "with_schedule, with_constant",
    [
        (lambda s: jopt.adamw(s(1e-2), weight_decay=s(0.1)),
         lambda: jopt.adamw(1e-2, weight_decay=0.1)),
        (lambda s: jopt.add_decayed_weights(s(0.1)), lambda: jopt.add_decayed_weights(0.1)),
        (lambda s: jopt.sgd(s(0.1), momentum=0.9), lambda: jopt.sgd(0.1, momentum=0.9)),
    ],
)  # fmt: skip
def test_a_constant_schedule_equals_the_constant_where_optax_takes_one(
    with_schedule, with_constant
):
    scheduled = _run(with_schedule(jopt.constant_schedule))
    constant = _run(with_constant())
    jax.tree.map(np.testing.assert_allclose, scheduled, constant)


def test_update_before_init_names_the_fix():
    tx = jopt.adam(1e-3)
    with pytest.raises(TypeError, match=r"state=None; call state = tx.init\(params\)"):
        tx.update(GRADS, None, PARAMS)


@pytest.mark.parametrize(
    "wrong_state", [lambda: PARAMS, lambda: jopt.sgd(0.1, momentum=0.9).init(PARAMS)]
)
def test_a_state_that_is_not_this_transforms_is_named(wrong_state):
    tx = jopt.adam(1e-3)
    with pytest.raises(
        ValueError,
        match=r"chain's update got a state that is not the one its "
        r"init builds.*call state = tx.init\(params\)",
    ):
        tx.update(GRADS, wrong_state(), PARAMS)


def test_a_transposed_gradient_leaf_is_named_with_both_shapes():
    tx = jopt.adam(1e-3)
    grads = {"w": jnp.ones((2, 3)), "b": jnp.ones(2)}
    with pytest.raises(
        ValueError,
        match=r"updates has shape \(2, 3\) at \['w'\] but params has "
        r"shape \(3, 2\)",
    ):
        tx.update(grads, tx.init(PARAMS), PARAMS)


def test_a_gradient_tree_missing_a_key_is_named():
    tx = jopt.adam(1e-3)
    with pytest.raises(ValueError, match=r"updates has structure .* differ .*\['w'\]"):
        tx.update({"b": jnp.ones(2)}, tx.init(PARAMS), PARAMS)
    with pytest.raises(ValueError, match=r"not the one its init builds for these updates"):
        tx.update({"b": jnp.ones(2)}, tx.init(PARAMS))


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "lamb"])
def test_the_checks_leave_the_compiled_program_equal_to_optax(name):
    optax = pytest.importorskip("optax")
    from benchmarks._timing import program_signature

    def compiled(tx):
        def step(params, grads, state):
            updates, state = tx.update(grads, state, params)
            return jax.tree.map(lambda p, u: p + u, params, updates), state

        state = tx.init(PARAMS)
        return jax.jit(step).lower(PARAMS, GRADS, state).compile().as_text()

    ours = compiled(getattr(jopt, name)(1e-3))
    theirs = compiled(getattr(optax, name)(1e-3))
    assert program_signature(ours) == program_signature(theirs)


def test_inject_hyperparams_schedules_what_the_plain_factory_refuses():
    """The fix the refusal names works: b1 as a schedule through inject_hyperparams."""
    tx = jopt.inject_hyperparams(jopt.adam)(
        learning_rate=jopt.exponential_decay(1e-2, 10, 0.5), b1=jopt.linear_schedule(0.9, 0.8, 10)
    )
    state = tx.init(PARAMS)
    for _ in range(3):
        _, state = tx.update(GRADS, state, PARAMS)
    np.testing.assert_allclose(state.hyperparams["b1"], 0.9 - 0.1 * 2 / 10, rtol=1e-6)
    with pytest.raises(ValueError, match=r"b1 \(a schedule\) at step 0 must be in \[0, 1\]"):
        jopt.inject_hyperparams(jopt.adam)(1e-3, b1=jopt.constant_schedule(1.5))
