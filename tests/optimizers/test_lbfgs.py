"""L-BFGS: optax's trajectory step by step, scipy's minimum, and construction errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.optimize

import jopt
from tests._trajectory import (
    ROSENBROCK_2D,
    ROSENBROCK_NESTED,
    assert_same_trajectory,
    rosenbrock,
    trajectory,
)


def _logistic_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = (x @ np.array([1.5, -2.0, 0.5]) + 0.3 * rng.normal(size=40) > 0).astype(np.float64)
    return jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)


X, Y = _logistic_data()


def logistic(params):
    """Regularized logistic regression (the penalty makes the minimum unique)."""
    logits = X @ params["w"] + params["b"]
    data = jnp.mean(jopt.losses.sigmoid_binary_cross_entropy(logits, Y))
    return data + jopt.losses.l2_penalty(params, 0.1)


def _scipy_minimum(fn, params):
    flat, unravel = jax.flatten_util.ravel_pytree(params)

    def value_and_grad(v):
        value, grad = jax.value_and_grad(lambda f: fn(unravel(f)))(jnp.asarray(v, jnp.float32))
        return float(value), np.asarray(jax.flatten_util.ravel_pytree(grad)[0], np.float64)

    result = scipy.optimize.minimize(value_and_grad, np.asarray(flat), jac=True, method="BFGS",
                                     options={"gtol": 1e-6})  # fmt: skip
    return result.x


PROBLEMS = {
    "rosenbrock_2d": (rosenbrock, ROSENBROCK_2D, 40),
    "rosenbrock_nested": (rosenbrock, ROSENBROCK_NESTED, 60),
    "logistic": (logistic, {"w": jnp.zeros(3), "b": jnp.zeros([])}, 15),
}


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_default_lbfgs_follows_optax_and_reaches_scipy_minimum(problem):
    fn, params, steps = PROBLEMS[problem]
    ours = trajectory(jopt.lbfgs(), fn, params, steps)
    theirs = trajectory(optax.lbfgs(), fn, params, steps)
    assert_same_trajectory(ours, theirs)
    found = np.asarray(jax.flatten_util.ravel_pytree(ours[-1])[0])
    np.testing.assert_allclose(found, _scipy_minimum(fn, params), rtol=2e-3, atol=2e-3)


CONFIGS = {
    "memory3_unscaled_backtracking": {
        "memory_size": 3,
        "scale_init_precond": False,
        "linesearch": ("scale_by_backtracking_linesearch", {"max_backtracking_steps": 30,
                                                            "store_grad": True}),
    },
    "fixed_step_schedule": {"learning_rate": lambda count: 0.05 / (1 + count), "linesearch": None},
}  # fmt: skip


def _build(module, config):
    config = dict(config)
    if config.get("linesearch") is not None:
        name, kwargs = config["linesearch"]
        config["linesearch"] = getattr(module, name)(**kwargs)
    return module.lbfgs(**config)


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_configurations_follow_optax(config):
    reuse = CONFIGS[config]["linesearch"] is not None
    ours = trajectory(_build(jopt, CONFIGS[config]), rosenbrock, ROSENBROCK_NESTED, 15, reuse=reuse)
    theirs = trajectory(
        _build(optax, CONFIGS[config]), rosenbrock, ROSENBROCK_NESTED, 15, reuse=reuse
    )
    assert_same_trajectory(ours, theirs)


def test_eager_step_matches_optax_and_state():
    # Without a line search an eager step compiles nothing; the searches' eager runs
    # are checked in tests/transforms/test_linesearch.py.
    ours = trajectory(jopt.lbfgs(0.01, 2, linesearch=None), rosenbrock, ROSENBROCK_2D, 4,
                      jit=False, reuse=False)  # fmt: skip
    theirs = trajectory(optax.lbfgs(0.01, 2, linesearch=None), rosenbrock, ROSENBROCK_2D, 4,
                        jit=False, reuse=False)  # fmt: skip
    assert_same_trajectory(ours, theirs)
    abstract = jax.eval_shape(jopt.lbfgs().init, ROSENBROCK_NESTED)
    concrete = jopt.lbfgs().init(ROSENBROCK_NESTED)
    assert jax.tree.structure(abstract) == jax.tree.structure(concrete)
    assert [x.dtype for x in jax.tree.leaves(abstract)] == [
        x.dtype for x in jax.tree.leaves(concrete)
    ]
    state = jopt.scale_by_lbfgs(memory_size=4).init(ROSENBROCK_NESTED)
    assert isinstance(state, jopt.ScaleByLBFGSState)
    assert state.diff_params_memory["tail"][0].shape == (4, 2)
    assert state.weights_memory.shape == (4,)


def test_scale_by_lbfgs_matches_the_bfgs_formula():
    # Independent of optax: the first direction is g * min(1, 1/|g|); with one secant pair
    # (s, y) the direction is H g, H = gamma (I - rho s y^T)(I - rho y s^T) + rho s s^T.
    tx = jopt.scale_by_lbfgs(memory_size=1)
    w0, g0 = jnp.asarray([1.0, -1.0, 0.5]), jnp.asarray([0.3, 0.2, -0.1])
    w1, g1 = jnp.asarray([0.5, -0.2, 0.4]), jnp.asarray([0.1, 0.4, -0.3])
    first, state = tx.update(g0, tx.init(w0), w0)
    g0_np = np.asarray(g0, np.float64)
    np.testing.assert_allclose(first, g0_np * min(1.0, 1.0 / np.linalg.norm(g0_np)), rtol=1e-6)
    second, _ = tx.update(g1, state, w1)
    s_, y_ = np.asarray(w1 - w0, np.float64), np.asarray(g1 - g0, np.float64)
    rho, gamma, eye = 1.0 / (y_ @ s_), (s_ @ y_) / (y_ @ y_), np.eye(3)
    h = gamma * (eye - rho * np.outer(s_, y_)) @ (eye - rho * np.outer(y_, s_))
    h += rho * np.outer(s_, s_)
    np.testing.assert_allclose(second, h @ np.asarray(g1, np.float64), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    ("call", "error", "names"),
    [
        (lambda: jopt.lbfgs(memory_size=0), ValueError, "memory_size"),
        (lambda: jopt.scale_by_lbfgs(memory_size=2.0), TypeError, "memory_size"),
        (lambda: jopt.scale_by_lbfgs(scale_init_precond="yes"), TypeError, "scale_init_precond"),
        (lambda: jopt.lbfgs(learning_rate=-1.0), ValueError, "learning_rate"),
        (lambda: jopt.lbfgs(linesearch="zoom"), TypeError, "linesearch"),
    ],
)
def test_bad_hyperparameters_fail_at_construction(call, error, names):
    with pytest.raises(error, match=names):
        call()


def test_update_without_params_is_named():
    tx = jopt.scale_by_lbfgs()
    with pytest.raises(ValueError, match="params"):
        tx.update(jnp.ones(2), tx.init(jnp.ones(2)))
