"""Grid and random search: run an objective on each configuration of a space, in order."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from jopt import _check
from jopt.tune._results import Results, Trial
from jopt.tune._space import Space, grid_configs, random_configs

Objective = Callable[[dict[str, Any]], Any]
"""``objective(config)`` returns the metric, or a dict with ``metric`` and optionally
``step`` and ``stopped_early``, or a :class:`Trial`."""


def as_trial(config: dict[str, Any], outcome: Any) -> Trial:
    """Normalise what an objective returned into a :class:`Trial`."""
    if isinstance(outcome, Trial):
        return outcome
    if isinstance(outcome, Mapping):
        if "metric" not in outcome:
            raise ValueError(
                f"an objective's dict must have a 'metric' key, got keys {sorted(outcome)}; "
                "return {'metric': value, 'step': ..., 'stopped_early': ...} or just the value"
            )
        return Trial(
            dict(config),
            float(outcome["metric"]),
            int(outcome.get("step", -1)),
            bool(outcome.get("stopped_early", False)),
        )
    return Trial(dict(config), float(outcome), -1, False)


def run_trials(
    objective: Objective, configs: Iterable[dict[str, Any]], mode: Literal["min", "max"] = "min"
) -> Results:
    """Evaluate ``objective`` on each configuration; a failing metric (NaN) is kept as NaN."""
    _check.one_of("mode", mode, ("min", "max"))
    trials = []
    for config in configs:
        trial = as_trial(config, objective(dict(config)))
        if math.isnan(trial.best_metric):
            trial = Trial(trial.config, math.nan, trial.step, trial.stopped_early)
        trials.append(trial)
    return Results(tuple(trials), mode)


def grid_search(
    objective: Objective, space: Space, points: int = 5, mode: Literal["min", "max"] = "min"
) -> Results:
    """Try every combination of :func:`~jopt.tune.grid_configs` (``points`` per continuous axis).

    Args:
      objective: ``config -> metric`` (see :data:`Objective`).
      space: ``{name: dimension, list of values, or constant}``.
      points: grid values per continuous dimension (log-spaced for :class:`LogUniform`).
      mode: ``"min"`` or ``"max"``: which metric is best.
    """
    return run_trials(objective, grid_configs(space, points), mode)


def random_search(
    objective: Objective,
    space: Space,
    num_trials: int,
    seed: int = 0,
    mode: Literal["min", "max"] = "min",
) -> Results:
    """Try ``num_trials`` random configurations, reproducible by ``seed`` (Bergstra & Bengio, 2012).

    Args:
      objective: ``config -> metric`` (see :data:`Objective`).
      space: ``{name: dimension, list of values, or constant}``.
      num_trials: number of draws, >= 1.
      seed: seed of the draws.
      mode: ``"min"`` or ``"max"``.
    """
    return run_trials(objective, random_configs(space, num_trials, seed), mode)
