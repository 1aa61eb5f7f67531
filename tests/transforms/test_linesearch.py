"""Backtracking and zoom line searches against optax, step by step, and their contract."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from tests._trajectory import (
    ROSENBROCK_2D,
    ROSENBROCK_NESTED,
    assert_same_trajectory,
    rosenbrock,
    trajectory,
)

# (id, factory name, kwargs, params): descent direction = -gradient, then the search.
CONFIGS = [
    ("backtracking_default", "scale_by_backtracking_linesearch",
     {"max_backtracking_steps": 40}, ROSENBROCK_2D),
    ("backtracking_tuned", "scale_by_backtracking_linesearch",
     {"max_backtracking_steps": 30, "slope_rtol": 0.3, "decrease_factor": 0.5,
      "increase_factor": math.inf, "max_learning_rate": 0.01, "atol": 1e-6, "rtol": 1e-6,
      "store_grad": True}, ROSENBROCK_NESTED),
    ("zoom_default", "scale_by_zoom_linesearch", {"max_linesearch_steps": 15}, ROSENBROCK_NESTED),
    ("zoom_tuned", "scale_by_zoom_linesearch",
     {"max_linesearch_steps": 8, "max_learning_rate": 0.05, "slope_rtol": 0.01,
      "curv_rtol": 0.5, "approx_dec_rtol": None, "increase_factor": 3.0,
      "initial_guess_strategy": "one", "stepsize_precision": 1e-3}, ROSENBROCK_2D),
]  # fmt: skip


def _descent(module, name, kwargs):
    return module.chain(module.scale(-1.0), getattr(module, name)(**kwargs))


@pytest.mark.parametrize(
    ("name", "kwargs", "params"), [c[1:] for c in CONFIGS], ids=[c[0] for c in CONFIGS]
)
def test_trajectory_matches_optax_under_jit(name, kwargs, params):
    reuse = kwargs.get("store_grad", name == "scale_by_zoom_linesearch")
    ours = trajectory(_descent(jopt, name, kwargs), rosenbrock, params, 12, reuse=reuse)
    theirs = trajectory(_descent(optax, name, kwargs), rosenbrock, params, 12, reuse=reuse)
    assert_same_trajectory(ours, theirs)
    assert rosenbrock(ours[-1]) < rosenbrock(params)


def test_eager_matches_optax_and_state_types():
    kwargs = {"max_linesearch_steps": 10}
    ours = trajectory(_descent(jopt, "scale_by_zoom_linesearch", kwargs), rosenbrock,
                      ROSENBROCK_2D, 2, jit=False)  # fmt: skip
    theirs = trajectory(_descent(optax, "scale_by_zoom_linesearch", kwargs), rosenbrock,
                        ROSENBROCK_2D, 2, jit=False)  # fmt: skip
    assert_same_trajectory(ours, theirs)
    state = jopt.scale_by_zoom_linesearch(10).init(ROSENBROCK_2D)
    assert isinstance(state, jopt.ScaleByZoomLinesearchState)
    assert isinstance(state.info, jopt.ZoomLinesearchInfo)
    bt_state = jopt.scale_by_backtracking_linesearch(3).init(ROSENBROCK_2D)
    assert isinstance(bt_state.info, jopt.BacktrackingLinesearchInfo)
    assert bt_state.grad is None  # store_grad=False keeps no gradient
    theirs_state = optax.scale_by_backtracking_linesearch(3).init(ROSENBROCK_2D)
    assert jax.tree.structure(bt_state).num_leaves == jax.tree.structure(theirs_state).num_leaves


def _least_squares(params, x, y):
    return jnp.mean((x @ params - y) ** 2)


@pytest.mark.parametrize("module", [jopt, optax], ids=["jopt", "optax"])
def test_value_fn_receives_the_batch(module):
    # value_fn takes data besides the params: it reaches it through update's kwargs.
    rng = np.random.default_rng(1)
    x, y = jnp.asarray(rng.normal(size=(8, 3)), jnp.float32), jnp.asarray(rng.normal(size=8))
    tx = _descent(module, "scale_by_backtracking_linesearch", {"max_backtracking_steps": 10})
    path = trajectory(tx, _least_squares, jnp.zeros(3), 4, reuse=False, x=x, y=y)
    if module is optax:
        ours = trajectory(
            _descent(jopt, "scale_by_backtracking_linesearch", {"max_backtracking_steps": 10}),
            _least_squares, jnp.zeros(3), 4, reuse=False, x=x, y=y,
        )  # fmt: skip
        assert_same_trajectory(ours, path)


def test_unknown_keyword_is_named():
    tx = jopt.scale_by_zoom_linesearch(5)
    params = jnp.zeros(3)
    value, grad = jax.value_and_grad(rosenbrock)(params)
    with pytest.raises(TypeError, match="batch"):
        tx.update(-grad, tx.init(params), params, value=value, grad=grad, value_fn=rosenbrock,
                  batch=1.0)  # fmt: skip


def test_value_and_grad_from_state_reuses_the_stored_evaluation():
    fn = rosenbrock
    tx = _descent(jopt, "scale_by_zoom_linesearch", {"max_linesearch_steps": 10})
    value_and_grad = jopt.value_and_grad_from_state(fn)
    params = ROSENBROCK_2D
    state = tx.init(params)
    # At the start the stored value is inf: it evaluates fn.
    value, grad = value_and_grad(params, state=state)
    np.testing.assert_allclose(value, fn(params), rtol=1e-6)
    updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=fn)
    # Afterwards it returns what the search stored, even at other params.
    value2, grad2 = value_and_grad(jnp.zeros(2), state=state)
    assert float(value2) == float(state[1].value)
    np.testing.assert_array_equal(grad2, state[1].grad)
    new_params = jopt.apply_updates(params, updates)
    np.testing.assert_allclose(value2, fn(new_params), rtol=1e-6)
    np.testing.assert_allclose(grad2, jax.grad(fn)(new_params), rtol=1e-5)


def test_value_and_grad_from_state_errors():
    fn = rosenbrock
    no_grad = jopt.scale_by_backtracking_linesearch(5).init(ROSENBROCK_2D)
    with pytest.raises(ValueError, match="store_grad=True"):
        jopt.value_and_grad_from_state(fn)(ROSENBROCK_2D, state=no_grad)
    two = jopt.chain(jopt.scale_by_zoom_linesearch(3), jopt.scale_by_zoom_linesearch(3))
    with pytest.raises(KeyError, match="exactly one line search"):
        jopt.value_and_grad_from_state(fn)(ROSENBROCK_2D, state=two.init(ROSENBROCK_2D))
    with pytest.raises(TypeError, match="value_fn"):
        jopt.value_and_grad_from_state(3.0)


def test_failed_search_does_not_move():
    # Every trial step leaves the domain (NaN): the search returns a zero step.
    fn = lambda x: jnp.where(jnp.sum(x) > 0.5, jnp.nan, jnp.sum(x**2))  # noqa: E731
    tx = jopt.scale_by_backtracking_linesearch(3, max_learning_rate=10.0)
    params = jnp.ones(2)
    value, grad = jax.value_and_grad(fn)(params * 0.1)
    updates, state = tx.update(jnp.ones(2), tx.init(params), params * 0.1, value=value,
                               grad=grad, value_fn=fn)  # fmt: skip
    np.testing.assert_array_equal(updates, jnp.zeros(2))
    assert float(state.learning_rate) == 0.0


@pytest.mark.parametrize(
    ("factory", "kwargs", "error", "names"),
    [
        ("scale_by_backtracking_linesearch", {"max_backtracking_steps": -1}, ValueError,
         "max_backtracking_steps"),
        ("scale_by_backtracking_linesearch", {"max_backtracking_steps": 2.5}, ValueError,
         "max_backtracking_steps"),
        ("scale_by_backtracking_linesearch", {"max_backtracking_steps": 5, "slope_rtol": 1.0},
         ValueError, "slope_rtol"),
        ("scale_by_backtracking_linesearch", {"max_backtracking_steps": 5,
                                              "decrease_factor": 1.0}, ValueError,
         "decrease_factor"),
        ("scale_by_backtracking_linesearch", {"max_backtracking_steps": 5,
                                              "decrease_factor": 0.0}, ValueError,
         "decrease_factor"),
        ("scale_by_backtracking_linesearch", {"max_backtracking_steps": 5,
                                              "increase_factor": -1.0}, ValueError,
         "increase_factor"),
        ("scale_by_backtracking_linesearch", {"max_backtracking_steps": 5,
                                              "max_learning_rate": 0.0}, ValueError,
         "max_learning_rate"),
        ("scale_by_backtracking_linesearch", {"max_backtracking_steps": 5, "atol": -1.0},
         ValueError, "atol"),
        ("scale_by_backtracking_linesearch", {"max_backtracking_steps": 5, "store_grad": 1},
         TypeError, "store_grad"),
        ("scale_by_zoom_linesearch", {"max_linesearch_steps": 0}, ValueError,
         "max_linesearch_steps"),
        ("scale_by_zoom_linesearch", {"max_linesearch_steps": 5, "slope_rtol": 0.5,
                                      "curv_rtol": 0.1}, ValueError, "curv_rtol"),
        ("scale_by_zoom_linesearch", {"max_linesearch_steps": 5, "slope_rtol": -0.1},
         ValueError, "slope_rtol"),
        ("scale_by_zoom_linesearch", {"max_linesearch_steps": 5, "increase_factor": 0.0},
         ValueError, "increase_factor"),
        ("scale_by_zoom_linesearch", {"max_linesearch_steps": 5, "max_learning_rate": -1.0},
         ValueError, "max_learning_rate"),
        ("scale_by_zoom_linesearch", {"max_linesearch_steps": 5, "approx_dec_rtol": -1.0},
         ValueError, "approx_dec_rtol"),
        ("scale_by_zoom_linesearch", {"max_linesearch_steps": 5, "stepsize_precision": -1.0},
         ValueError, "stepsize_precision"),
        ("scale_by_zoom_linesearch", {"max_linesearch_steps": 5,
                                      "initial_guess_strategy": "two"}, ValueError,
         "initial_guess_strategy"),
    ],
)  # fmt: skip
def test_bad_hyperparameters_fail_at_construction(factory, kwargs, error, names):
    with pytest.raises(error, match=names):
        getattr(jopt, factory)(**kwargs)


def test_valid_edge_values_are_accepted():
    jopt.scale_by_backtracking_linesearch(0, slope_rtol=0.0, increase_factor=math.inf)
    jopt.scale_by_zoom_linesearch(1, curv_rtol=math.inf, approx_dec_rtol=None)
    jopt.scale_by_zoom_linesearch(jnp.asarray(4), tol=jnp.asarray(0.0))
