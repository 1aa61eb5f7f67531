"""Bayesian search through Optuna (an optional extra: ``pip install jopt[tune]``).

jopt does not build its own Gaussian process: Optuna's TPE sampler proposes the
configurations and its pruner stops unpromising trials from the metrics they report.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

from jopt import _check
from jopt.tune._results import Results, Trial
from jopt.tune._search import as_trial
from jopt.tune._space import Categorical, IntUniform, LogUniform, Space, Uniform


class Pruned(Exception):
    """Raised by :meth:`Reporter.report` when Optuna's pruner stops the trial."""


class Reporter:
    """Handed to the objective: report intermediate metrics, get pruned like early stopping.

    ``report(step, metric)`` records the metric with Optuna; when the pruner judges the
    trial unpromising it raises :class:`Pruned`, which the search records as a trial
    that stopped early with the best metric reported so far.
    """

    def __init__(self, trial: Any, mode: str):
        self._trial = trial
        self._mode = mode
        self.best = math.inf if mode == "min" else -math.inf
        self.step = -1

    def report(self, step: int, metric: float) -> None:
        """Record ``metric`` at ``step``; raise :class:`Pruned` if the trial should stop."""
        metric = float(metric)
        self.step = int(step)
        if math.isfinite(metric):
            self.best = min(self.best, metric) if self._mode == "min" else max(self.best, metric)
        self._trial.report(metric, int(step))
        if self._trial.should_prune():
            raise Pruned(f"pruned at step {step} with metric {metric}")

    def should_stop(self, early_stopping_state: Any) -> bool:
        """True when a jopt early-stopping state says stop: use it to end a trial's loop."""
        return bool(early_stopping_state.stopped)


def _suggest(trial: Any, name: str, value: Any) -> Any:
    if isinstance(value, LogUniform):
        return trial.suggest_float(name, value.low, value.high, log=True)
    if isinstance(value, Uniform):
        return trial.suggest_float(name, value.low, value.high)
    if isinstance(value, IntUniform):
        return trial.suggest_int(name, value.low, value.high)
    if isinstance(value, (Categorical, list, tuple)):
        values = value.values if isinstance(value, Categorical) else tuple(value)
        return trial.suggest_categorical(name, values)
    return value


def optuna_search(
    objective: Callable[[dict[str, Any], Reporter], Any],
    space: Space,
    num_trials: int,
    seed: int = 0,
    mode: Literal["min", "max"] = "min",
    pruner: Any = None,
) -> Results:
    """Search with Optuna's TPE sampler and (optionally) a pruner.

    Args:
      objective: ``objective(config, reporter) -> metric``; call ``reporter.report(step,
        metric)`` after each evaluation so the pruner can stop bad trials early.
      space: ``{name: dimension, list of values, or constant}``.
      num_trials: number of trials, >= 1.
      seed: seed of the sampler; the same seed proposes the same configurations.
      mode: ``"min"`` or ``"max"``.
      pruner: an ``optuna.pruners`` instance (default: a median pruner after 2 trials).

    References:
      Bergstra et al., *Algorithms for Hyper-Parameter Optimization* (NeurIPS 2011);
      Akiba et al., *Optuna* (KDD 2019).
    """
    try:
        import optuna  # noqa: PLC0415 - optional extra
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "optuna_search needs Optuna; install it with `pip install 'jopt[tune]'`"
        ) from None
    _check.integer("num_trials", num_trials, minimum=1)
    _check.one_of("mode", mode, ("min", "max"))
    # Quiet during the search, then leave optuna's logging as the user had it.
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return _optimize(optuna, objective, space, num_trials, seed, mode, pruner)
    finally:
        optuna.logging.set_verbosity(verbosity)


def _optimize(optuna, objective, space, num_trials, seed, mode, pruner) -> Results:
    """The study itself: one trial per configuration proposed by TPE."""
    study = optuna.create_study(
        direction="minimize" if mode == "min" else "maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=pruner if pruner is not None else optuna.pruners.MedianPruner(n_startup_trials=2),
    )
    trials: list[Trial] = []

    def run(trial):
        config = {name: _suggest(trial, name, value) for name, value in space.items()}
        reporter = Reporter(trial, mode)
        try:
            result = as_trial(config, objective(config, reporter))
        except Pruned:
            trials.append(Trial(config, reporter.best, reporter.step, True))
            raise optuna.TrialPruned() from None
        trials.append(result)
        return result.best_metric

    study.optimize(run, n_trials=num_trials)
    return Results(tuple(trials), mode)
