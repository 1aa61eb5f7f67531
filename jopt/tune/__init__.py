"""Hyperparameter search (``jopt.tune``): spaces, grid/random/Optuna search, population training,
and the learning-rate range test."""

from jopt.tune._lr_range import LRRangeResult, lr_range_test
from jopt.tune._optuna import Pruned, Reporter, optuna_search
from jopt.tune._population import PopulationResult, train_population
from jopt.tune._results import Results, Trial
from jopt.tune._search import grid_search, random_search, run_trials
from jopt.tune._space import (
    Categorical,
    IntUniform,
    LogUniform,
    Uniform,
    grid_configs,
    random_configs,
)

__all__ = [
    "Categorical",
    "IntUniform",
    "LRRangeResult",
    "LogUniform",
    "PopulationResult",
    "Pruned",
    "Reporter",
    "Results",
    "Trial",
    "Uniform",
    "grid_configs",
    "grid_search",
    "lr_range_test",
    "optuna_search",
    "random_configs",
    "random_search",
    "run_trials",
    "train_population",
]
