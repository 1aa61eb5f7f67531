"""The record of a run: one dict per epoch, written as JSON or CSV and plotted to PNG."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Iterator
from typing import Any

from jopt.train._plotting import figure


class History:
    """Per-epoch rows such as ``{"epoch": 0, "step": 50, "loss": 0.3, "val_loss": 0.4}``.

    Example:
      >>> history = History([{"epoch": 0, "loss": 1.0}, {"epoch": 1, "loss": 0.5}])
      >>> history["loss"]
      [1.0, 0.5]
    """

    def __init__(self, rows: Iterable[dict[str, Any]] = ()) -> None:
        self.rows: list[dict[str, Any]] = [dict(r) for r in rows]

    def append(self, row: dict[str, Any]) -> None:
        """Add the row of one epoch."""
        self.rows.append(dict(row))

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    def __getitem__(self, key: str) -> list[Any]:
        """The column ``key`` (None where an epoch lacks it)."""
        return [row.get(key) for row in self.rows]

    def __repr__(self) -> str:
        return f"History({self.rows!r})"

    @property
    def keys(self) -> list[str]:
        """Column names in first-seen order."""
        return list(dict.fromkeys(k for row in self.rows for k in row))

    def to_json(self, path: str | os.PathLike) -> None:
        """Write the rows as a JSON list (non-finite numbers as null)."""
        clean = [{k: _finite_or_none(v) for k, v in row.items()} for row in self.rows]
        with open(path, "w") as f:
            json.dump(clean, f, indent=1)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> History:
        """Read rows written by :meth:`to_json`."""
        with open(path) as f:
            return cls(json.load(f))

    def to_csv(self, path: str | os.PathLike) -> None:
        """Write the rows as CSV, one column per key."""
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.keys)
            writer.writeheader()
            writer.writerows(self.rows)

    def plot(self, path: str | os.PathLike, keys: Iterable[str] | None = None) -> None:
        """Plot the curves of ``keys`` (default: every loss and metric) against the epoch to PNG.

        Losses share one panel; other metrics (accuracy ...) share a second one.
        """
        skip = {"epoch", "step", "time"}
        keys = [k for k in (keys or self.keys) if k not in skip and _numeric(self[k])]
        losses = [k for k in keys if "loss" in k]
        others = [k for k in keys if "loss" not in k]
        panels = [p for p in (losses, others) if p]
        fig = figure((5 * max(len(panels), 1), 3.5))
        axes = fig.subplots(1, max(len(panels), 1), squeeze=False)[0]
        epochs = [row.get("epoch", i) for i, row in enumerate(self.rows)]
        for ax, panel in zip(axes, panels, strict=False):
            for key in panel:
                ax.plot(epochs, [math.nan if v is None else v for v in self[key]], label=key)
            ax.set_xlabel("epoch")
            ax.legend()
            ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, dpi=100)


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _numeric(column: list[Any]) -> bool:
    return any(isinstance(v, (int, float)) and not isinstance(v, bool) for v in column)
