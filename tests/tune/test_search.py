"""Spaces, grid/random/Optuna search and results: reproducible, and they find a known optimum."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jopt
from jopt import tune

CURVATURE = 4.0  # gradient descent on 0.5*h*|x|^2 converges in one step exactly at lr = 1/h
BEST_LR = 1.0 / CURVATURE


@jax.jit
def _quadratic_loss_after(learning_rate):
    tx = jopt.sgd(learning_rate)
    params = jnp.array([1.0, -2.0, 3.0])
    state = tx.init(params)
    for _ in range(5):
        grads = CURVATURE * params
        updates, state = tx.update(grads, state, params)
        params = jopt.apply_updates(params, updates)
    return 0.5 * CURVATURE * jnp.sum(params**2)


def objective(config):
    return float(_quadratic_loss_after(config["learning_rate"]))


def test_grid_configs_cross_lists_and_log_grids():
    configs = tune.grid_configs(
        {"learning_rate": tune.LogUniform(1e-4, 1e-1), "nesterov": [True, False], "b1": 0.9},
        points=4,
    )
    assert len(configs) == 8
    rates = sorted({c["learning_rate"] for c in configs})
    np.testing.assert_allclose(rates, [1e-4, 1e-3, 1e-2, 1e-1], rtol=1e-9)
    assert all(c["b1"] == 0.9 for c in configs)


def test_random_configs_are_reproducible_by_seed_and_in_range():
    space = {
        "lr": tune.LogUniform(1e-5, 1.0),
        "width": tune.IntUniform(8, 64),
        "act": tune.Categorical(["relu", "gelu"]),
        "wd": tune.Uniform(0.0, 0.1),
    }
    a, b = tune.random_configs(space, 20, seed=3), tune.random_configs(space, 20, seed=3)
    assert a == b and a != tune.random_configs(space, 20, seed=4)
    for c in a:
        assert 1e-5 <= c["lr"] <= 1.0 and 8 <= c["width"] <= 64 and c["act"] in ("relu", "gelu")
    # Log-uniform: about half the draws fall below the geometric midpoint.
    draws = [c["lr"] for c in tune.random_configs(space, 400, seed=0)]
    assert 0.4 < np.mean(np.array(draws) < 10**-2.5) < 0.6


def _within_factor_two(lr):
    return BEST_LR / 2 <= lr <= BEST_LR * 2


def test_grid_search_finds_the_known_best_learning_rate():
    results = tune.grid_search(objective, {"learning_rate": tune.LogUniform(1e-3, 10.0)}, points=13)
    assert _within_factor_two(results.best_config["learning_rate"])


def test_random_search_finds_the_known_best_learning_rate():
    results = tune.random_search(
        objective, {"learning_rate": tune.LogUniform(1e-3, 10.0)}, 25, seed=0
    )
    assert _within_factor_two(results.best_config["learning_rate"])


def test_optuna_search_finds_the_known_best_learning_rate():
    results = tune.optuna_search(
        lambda config, reporter: objective(config),
        {"learning_rate": tune.LogUniform(1e-3, 10.0)},
        num_trials=25,
        seed=0,
    )
    assert _within_factor_two(results.best_config["learning_rate"])


def test_optuna_pruning_stops_bad_trials_early():
    def slow_objective(config, reporter):
        metric = math.nan
        for step in range(10):
            metric = abs(math.log10(config["x"])) + 1.0 / (step + 1)
            reporter.report(step, metric)
        return {"metric": metric, "step": 9}

    results = tune.optuna_search(slow_objective, {"x": tune.LogUniform(1e-3, 1e3)}, 20, seed=1)
    pruned = [t for t in results.trials if t.stopped_early]
    assert pruned, "the median pruner should stop some far-off trials"
    assert all(t.step < 9 for t in pruned)


def test_results_table_files_and_plot(tmp_path):
    results = tune.grid_search(objective, {"learning_rate": [0.05, 0.25, 1.0]})
    assert results.best_config == {"learning_rate": 0.25}
    rows = results.table()
    assert rows[1]["learning_rate"] == 0.25 and set(rows[0]) >= {
        "best_metric",
        "step",
        "stopped_early",
    }
    results.to_json(tmp_path / "r.json")
    results.to_csv(tmp_path / "r.csv")
    results.plot(tmp_path / "r.png")
    assert json.loads((tmp_path / "r.json").read_text())["best"] == {"learning_rate": 0.25}
    assert (tmp_path / "r.csv").read_text().splitlines()[0].startswith("learning_rate,best_metric")
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "build, argument",
    [
        (lambda: tune.LogUniform(0.0, 1.0), "low"),
        (lambda: tune.Uniform(1.0, 0.5), "high"),
        (lambda: tune.Categorical([]), "values"),
        (lambda: tune.random_configs({"a": [1]}, 0), "num_trials"),
        (lambda: tune.grid_search(objective, {"a": [1]}, mode="lowest"), "mode"),
        (lambda: tune.run_trials(lambda c: {"loss": 1.0}, [{}]), "metric"),
    ],
)
def test_bad_input_names_the_argument(build, argument):
    with pytest.raises((ValueError, TypeError), match=argument):
        build()


def test_plots_leave_matplotlib_backend_and_pyplot_alone(tmp_path):
    import matplotlib

    backend = matplotlib.get_backend()
    results = tune.grid_search(objective, {"learning_rate": [0.05, 0.25]})
    results.plot(tmp_path / "r.png")
    assert matplotlib.get_backend() == backend
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    import sys

    if "matplotlib.pyplot" in sys.modules:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []


def test_optuna_search_restores_the_users_logging_verbosity():
    import optuna

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.DEBUG)
    try:
        tune.optuna_search(
            lambda config, reporter: objective(config),
            {"learning_rate": tune.LogUniform(1e-2, 1.0)},
            num_trials=2,
            seed=0,
        )
        assert optuna.logging.get_verbosity() == optuna.logging.DEBUG
    finally:
        optuna.logging.set_verbosity(before)
