"""MultiSteps follows optax.MultiSteps over many steps, keeps one accumulator in the
gradients' dtype (bfloat16 trains without dtype errors) and rejects bad arguments."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from jopt.testing import assert_trees_close, nested_params
from jopt.testing import bumpy_loss as loss


def _every_k(step):
    return jnp.where(step < 2, 2, 3)


def _train(tx, params, steps, nan_at=()):
    """``steps`` jitted steps in one scan; the gradients of the steps in ``nan_at`` are NaN."""

    def step(carry, i):
        params, state = carry
        grads = jax.grad(loss)(params)
        grads = jax.tree.map(lambda g, p: g.astype(p.dtype), grads, params)
        bad = jnp.isin(i, jnp.asarray(nan_at, jnp.int32)) if nan_at else False
        grads = jax.tree.map(lambda g: jnp.where(bad, jnp.nan, g), grads)
        updates, state = tx.update(grads, state, params)
        return (jopt.apply_updates(params, updates), state), None

    run = jax.jit(lambda p: jax.lax.scan(step, (p, tx.init(p)), jnp.arange(steps))[0])
    return run(params)


@pytest.mark.parametrize(
    "every_k, mean", [(1, True), (3, False), (_every_k, True)], ids=["k1", "k3-sum", "schedule"]
)
def test_matches_optax_over_30_steps(every_k, mean):
    params = nested_params()
    ours, our_state = _train(
        jopt.MultiSteps(jopt.adam(0.05), every_k, mean).gradient_transformation(), params, 30
    )
    theirs, their_state = _train(optax.MultiSteps(optax.adam(0.05), every_k, mean), params, 30)
    assert_trees_close(ours, theirs)
    for field in ("mini_step", "gradient_step", "acc_grads", "inner_opt_state"):
        ours_, theirs_ = getattr(our_state, field), getattr(their_state, field)
        assert_trees_close(jax.tree.leaves(ours_), jax.tree.leaves(theirs_))
    assert int(our_state.gradient_step) == (30 if every_k == 1 else 10)


def test_skipped_mini_steps_leave_the_state_unchanged_like_optax():
    params = nested_params()
    ours, our_state = _train(
        jopt.MultiSteps(
            jopt.sgd(0.05, momentum=0.9), 3, should_skip_update_fn=jopt.skip_not_finite
        ),
        params,
        20,
        nan_at=(4, 5, 11),
    )
    theirs, their_state = _train(
        optax.MultiSteps(
            optax.sgd(0.05, momentum=0.9), 3, should_skip_update_fn=optax.skip_not_finite
        ),
        params,
        20,
        nan_at=(4, 5, 11),
    )
    assert_trees_close(ours, theirs)
    assert int(our_state.gradient_step) == 5  # 17 accepted mini-steps
    assert_trees_close(our_state.skip_state, their_state.skip_state)


def test_skip_large_updates_skips_above_the_bound_and_nan():
    fn = functools.partial(jopt.skip_large_updates, max_squared_norm=10.0)
    small, info = fn({"a": jnp.ones(3)}, 0, None)
    big, info_big = fn({"a": jnp.full(3, 2.0)}, 0, None)
    nan, _ = fn({"a": jnp.array([jnp.nan, 0.0])}, 0, None)
    assert (bool(small), bool(big), bool(nan)) == (False, True, True)
    assert float(info["norm_squared"]) == 3.0 and float(info_big["norm_squared"]) == 12.0


def test_skip_not_finite_counts_the_bad_entries():
    skip, info = jopt.skip_not_finite(
        {"a": jnp.array([1.0, jnp.inf]), "b": jnp.array([jnp.nan])}, 0, None
    )
    assert (
        bool(skip)
        and int(info["num_not_finite"]) == 2
        and info["num_not_finite"].dtype == jnp.int32
    )


def test_bfloat16_params_train_keep_their_dtype_and_match_optax():
    params = nested_params(jnp.bfloat16)
    tx = jopt.MultiSteps(
        jopt.adam(0.05), 3, should_skip_update_fn=jopt.skip_not_finite, accumulator_dtype=None
    )
    trained, state = _train(tx.gradient_transformation(), params, 9)
    for tree in (trained, state.acc_grads):
        assert {leaf.dtype for leaf in jax.tree.leaves(tree)} == {jnp.dtype(jnp.bfloat16)}
    assert float(loss(trained)) < float(loss(params))
    # optax accumulates in float32: a bfloat16 accumulator gives the same numbers up to
    # bfloat16 rounding, and the default (float32) accumulator exactly optax's.
    reference, _ = _train(optax.MultiSteps(optax.adam(0.05), 3), params, 9)
    assert_trees_close(trained, reference, rtol=2e-2, atol=2e-2)
    ours_f32, state_f32 = _train(jopt.MultiSteps(jopt.adam(0.05), 3), params, 9)
    assert_trees_close(ours_f32, reference, rtol=0, atol=0)
    assert {leaf.dtype for leaf in jax.tree.leaves(state_f32.acc_grads)} == {jnp.dtype(jnp.float32)}


def test_bfloat16_params_with_float32_gradients_and_float32_moments():
    """Mixed precision: the inner optimizer returns float32 updates for bfloat16 params."""
    params = nested_params(jnp.bfloat16)
    tx = jopt.MultiSteps(
        optax.adam(0.05, mu_dtype=jnp.float32), 2, should_skip_update_fn=jopt.skip_not_finite
    )
    state = tx.init(params)
    grads = jax.tree.map(lambda p: jnp.ones(p.shape, jnp.float32), params)
    update = jax.jit(tx.update)
    for _ in range(4):
        updates, new_state = update(grads, state, params)
        assert jax.tree.map(lambda x: x.dtype, new_state) == jax.tree.map(lambda x: x.dtype, state)
        state = new_state
    assert int(state.gradient_step) == 2


def test_state_holds_exactly_one_accumulator_tree():
    params = nested_params()
    inner = jopt.adam(0.05)
    state = jopt.MultiSteps(inner, 4).init(params)
    n_params, n_inner = len(jax.tree.leaves(params)), len(jax.tree.leaves(inner.init(params)))
    assert len(jax.tree.leaves(state)) == n_inner + n_params + 2  # + mini_step, gradient_step
    assert jax.tree.structure(state.acc_grads) == jax.tree.structure(params)


def test_complex_gradients_are_averaged_with_their_imaginary_part():
    params = {"z": jnp.zeros(2, jnp.complex64)}
    tx = jopt.MultiSteps(jopt.sgd(1.0), 2)
    state = tx.init(params)
    g1, g2 = np.array([1 + 2j, 3 - 1j], np.complex64), np.array([-1 + 0j, 1 + 1j], np.complex64)
    _, state = tx.update({"z": jnp.asarray(g1)}, state, params)
    updates, state = tx.update({"z": jnp.asarray(g2)}, state, params)
    np.testing.assert_allclose(updates["z"], -(g1 + g2) / 2, rtol=1e-6)


def test_has_updated_marks_every_kth_call():
    tx = jopt.MultiSteps(jopt.sgd(0.1), 3)
    params = {"w": jnp.ones(2)}
    state, flags = tx.init(params), []
    for _ in range(7):
        _, state = tx.update({"w": jnp.ones(2)}, state, params)
        flags.append(bool(tx.has_updated(state)))
    assert flags == [False, False, True, False, False, True, False]
    assert tx.inner_opt.init is not None


@pytest.mark.parametrize("value", [0, -2])
def test_every_k_schedule_must_be_positive(value):
    with pytest.raises(ValueError, match=r"every_k_schedule must be an integer >= 1, got"):
        jopt.MultiSteps(jopt.sgd(0.1), value)


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"every_k_schedule": 2.5}, TypeError, "every_k_schedule"),
        ({"every_k_schedule": True}, TypeError, "every_k_schedule"),
        ({"every_k_schedule": 2, "use_grad_mean": "yes"}, TypeError, "use_grad_mean"),
        ({"every_k_schedule": 2, "should_skip_update_fn": 3}, TypeError, "should_skip_update_fn"),
        (
            {"every_k_schedule": 2, "accumulator_dtype": "no-such-dtype"},
            TypeError,
            "accumulator_dtype",
        ),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, name):
    with pytest.raises(error, match=name):
        jopt.MultiSteps(jopt.sgd(0.1), **kwargs)


def test_opt_must_be_a_transform():
    with pytest.raises(TypeError, match=r"opt must be a GradientTransformation.*jopt.adam\(1e-3\)"):
        jopt.MultiSteps(jopt.adam, 2)


def test_should_skip_update_fn_must_return_a_boolean_scalar():
    tx = jopt.MultiSteps(
        jopt.sgd(0.1), 2, should_skip_update_fn=lambda u, s, p: (jnp.float32(0), ())
    )
    params = {"w": jnp.ones(2)}
    with pytest.raises(
        ValueError, match=r"should_skip_update_fn must return a boolean scalar.*float32"
    ):
        tx.update(params, tx.init(params), params)


@pytest.mark.parametrize(
    "every_k", [lambda step: 2.0, jnp.int32(2)], ids=["float-schedule", "array"]
)
def test_every_k_as_float_schedule_or_array(every_k):
    """optax fails on both (a lax.cond type mismatch, and 'not callable')."""
    params = {"w": jnp.ones(2)}
    tx = jopt.MultiSteps(jopt.sgd(1.0), every_k)
    state, update = tx.init(params), jax.jit(tx.update)
    for i in range(4):
        updates, state = update({"w": jnp.full(2, float(i))}, state, params)
    np.testing.assert_allclose(updates["w"], -2.5)  # mean of the gradients 2 and 3
    assert state.mini_step.dtype == jnp.int32 and int(state.gradient_step) == 2
