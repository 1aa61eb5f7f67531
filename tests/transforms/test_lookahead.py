"""lookahead matches optax.lookahead and the paper's two nested loops; bad arguments are
rejected with the argument's name."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from jopt.testing import assert_trees_close, nested_params
from jopt.testing import bumpy_loss as loss


def _train(lib, tx, params, steps):
    def step(carry, _):
        lp, state = carry
        updates, state = tx.update(jax.grad(loss)(lp.fast), state, lp)
        return (lib.apply_updates(lp, updates), state), None

    run = jax.jit(lambda p: jax.lax.scan(step, (p, tx.init(p)), length=steps)[0])
    return run(lib.LookaheadParams.init_synced(params))


@pytest.mark.parametrize("reset_state", [False, True])
def test_matches_optax(reset_state):
    params = nested_params()
    ours, our_state = _train(jopt, jopt.lookahead(jopt.adam(0.05), 3, 0.5, reset_state), params, 11)
    theirs, _ = _train(optax, optax.lookahead(optax.adam(0.05), 3, 0.5, reset_state), params, 11)
    assert_trees_close(ours.fast, theirs.fast)
    assert_trees_close(ours.slow, theirs.slow)
    assert int(our_state.steps_since_sync) == 11 % 3


def test_matches_the_papers_nested_loops_with_sgd():
    """k fast SGD steps, then slow += alpha * (fast - slow) and fast = slow (NumPy)."""
    x0 = np.array([1.0, -2.0, 0.5])
    grad = lambda x: 2.0 * x + np.cos(x)  # noqa: E731
    k, alpha, lr = 4, 0.3, 0.1
    slow = x0.copy()
    for _ in range(3):
        fast = slow.copy()
        for _ in range(k):
            fast = fast - lr * grad(fast)
        slow = slow + alpha * (fast - slow)
    tx = jopt.lookahead(jopt.sgd(lr), sync_period=k, slow_step_size=alpha)
    lp = jopt.LookaheadParams.init_synced(jnp.asarray(x0, jnp.float32))
    state = tx.init(lp)
    for _ in range(3 * k):
        g = jnp.asarray(grad(np.asarray(lp.fast, np.float64)), jnp.float32)
        updates, state = tx.update(g, state, lp)
        lp = jopt.apply_updates(lp, updates)
    np.testing.assert_allclose(lp.slow, slow, rtol=1e-5)
    np.testing.assert_allclose(lp.fast, slow, rtol=1e-5)


def test_init_accepts_plain_params_and_bfloat16_keeps_its_dtype():
    params = {"w": jnp.ones(3, jnp.bfloat16)}
    tx = jopt.lookahead(jopt.sgd(0.1), 2, 0.5)
    assert jax.tree.structure(tx.init(params)) == jax.tree.structure(
        tx.init(jopt.LookaheadParams.init_synced(params))
    )
    lp = jopt.LookaheadParams.init_synced(params)
    state = tx.init(lp)
    for _ in range(2):
        updates, state = tx.update({"w": jnp.ones(3, jnp.bfloat16)}, state, lp)
        lp = jopt.apply_updates(lp, updates)
    assert {x.dtype for x in jax.tree.leaves(lp)} == {jnp.dtype(jnp.bfloat16)}


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"sync_period": 0}, ValueError, "sync_period must be an integer >= 1"),
        ({"sync_period": 1.5}, TypeError, "sync_period must be an integer"),
        ({"slow_step_size": -0.5}, ValueError, "slow_step_size must be in \\[0, 1\\]"),
        ({"slow_step_size": 1.5}, ValueError, "slow_step_size must be in \\[0, 1\\]"),
        ({"reset_state": "yes"}, TypeError, "reset_state must be True or False"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, name):
    with pytest.raises(error, match=name):
        jopt.lookahead(jopt.sgd(0.1), **{"sync_period": 2, "slow_step_size": 0.5, **kwargs})


def test_fast_optimizer_must_be_a_transform():
    with pytest.raises(TypeError, match="fast_optimizer must be a GradientTransformation"):
        jopt.lookahead(jopt.sgd, 2, 0.5)


def test_update_needs_lookahead_params():
    tx = jopt.lookahead(jopt.sgd(0.1), 2, 0.5)
    params = {"w": jnp.ones(2)}
    with pytest.raises(ValueError, match=r"params=LookaheadParams.*init_synced"):
        tx.update(params, tx.init(params), params)
