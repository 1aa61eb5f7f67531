"""The outcome of a search: a table of trials, the best one, JSON/CSV files and a plot."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import pathlib
from typing import Any, Literal

from jopt.train._plotting import figure


@dataclasses.dataclass(frozen=True)
class Trial:
    """One configuration and what it reached.

    Attributes:
      config: the hyperparameters.
      best_metric: the best value of the monitored metric (NaN if it never finished).
      step: the step (or evaluation) at which training ended.
      stopped_early: whether early stopping (or pruning) ended it.
    """

    config: dict[str, Any]
    best_metric: float
    step: int
    stopped_early: bool


@dataclasses.dataclass(frozen=True)
class Results:
    """The trials of one search, in the order they ran.

    Attributes:
      trials: the trials.
      mode: ``"min"`` if lower metrics are better, else ``"max"``.
    """

    trials: tuple[Trial, ...]
    mode: Literal["min", "max"] = "min"

    @property
    def best(self) -> Trial:
        """The trial with the best finite metric."""
        finite = [t for t in self.trials if math.isfinite(t.best_metric)]
        if not finite:
            raise ValueError("no trial reached a finite metric; widen or lower the search range")
        pick = min if self.mode == "min" else max
        return pick(finite, key=lambda t: t.best_metric)

    @property
    def best_config(self) -> dict[str, Any]:
        """The configuration of :attr:`best`."""
        return self.best.config

    def table(self) -> list[dict[str, Any]]:
        """One flat row per trial: the hyperparameters, then the outcome."""
        return [
            {
                **t.config,
                "best_metric": t.best_metric,
                "step": t.step,
                "stopped_early": t.stopped_early,
            }
            for t in self.trials
        ]

    def to_json(self, path: str | pathlib.Path) -> None:
        """Write the table, the mode and the best configuration as JSON."""
        payload = {"mode": self.mode, "best": self.best_config, "trials": self.table()}
        pathlib.Path(path).write_text(json.dumps(payload, indent=2, default=float))

    def to_csv(self, path: str | pathlib.Path) -> None:
        """Write the table as CSV."""
        rows = self.table()
        columns = list(dict.fromkeys(k for row in rows for k in row))
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)

    def plot(self, path: str | pathlib.Path, x: str | None = None) -> None:
        """Metric against one hyperparameter (log axis when it spans decades), to PNG."""
        x = x or next(iter(self.trials[0].config))
        xs = [t.config[x] for t in self.trials]
        ys = [t.best_metric for t in self.trials]
        fig = figure((5, 3.2))
        ax = fig.subplots()
        ax.scatter(xs, ys, c=["tab:red" if t.stopped_early else "tab:blue" for t in self.trials])
        numeric = all(isinstance(v, (int, float)) and v > 0 for v in xs)
        if numeric and max(xs) / min(xs) > 100:
            ax.set_xscale("log")
        ax.axvline(self.best_config[x], color="gray", linestyle="--", linewidth=0.8)
        ax.set_xlabel(x)
        ax.set_ylabel(f"best metric ({self.mode})")
        ax.set_title("trials (red: stopped early)", fontsize=9)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
