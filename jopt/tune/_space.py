"""Search spaces: uniform, log-uniform, integer and categorical dimensions, and their grids."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from jopt import _check


@dataclasses.dataclass(frozen=True)
class Uniform:
    """Real values uniform in ``[low, high]``."""

    low: float
    high: float

    def __post_init__(self):
        _check.number("low", self.low)
        _check.number("high", self.high)
        if not self.low < self.high:
            raise ValueError(f"high must be > low, got low={self.low!r}, high={self.high!r}")

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))

    def grid(self, points: int) -> list[float]:
        return [float(x) for x in np.linspace(self.low, self.high, points)]


@dataclasses.dataclass(frozen=True)
class LogUniform:
    """Positive real values whose logarithm is uniform: learning rates, weight decays."""

    low: float
    high: float

    def __post_init__(self):
        _check.positive("low", self.low, "a log-uniform range must start above 0, e.g. 1e-5")
        _check.positive("high", self.high)
        if not self.low < self.high:
            raise ValueError(f"high must be > low, got low={self.low!r}, high={self.high!r}")

    def sample(self, rng: np.random.Generator) -> float:
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))

    def grid(self, points: int) -> list[float]:
        return [float(x) for x in np.geomspace(self.low, self.high, points)]


@dataclasses.dataclass(frozen=True)
class IntUniform:
    """Integers uniform in ``[low, high]`` (both included): batch sizes, widths."""

    low: int
    high: int

    def __post_init__(self):
        _check.integer("low", self.low, minimum=-(2**62))
        _check.integer("high", self.high, minimum=self.low, fix=f"pass high >= low ({self.low})")

    def sample(self, rng: np.random.Generator) -> int:
        return int(rng.integers(self.low, self.high + 1))

    def grid(self, points: int) -> list[int]:
        return sorted({int(round(x)) for x in np.linspace(self.low, self.high, points)})


@dataclasses.dataclass(frozen=True)
class Categorical:
    """One of a fixed list of values."""

    values: tuple[Any, ...]

    def __init__(self, values: Sequence[Any]):
        if isinstance(values, (str, bytes)) or len(values) == 0:
            raise ValueError(f"values must be a non-empty list of choices, got {values!r}")
        object.__setattr__(self, "values", tuple(values))

    def sample(self, rng: np.random.Generator) -> Any:
        return self.values[int(rng.integers(len(self.values)))]

    def grid(self, points: int) -> list[Any]:
        del points
        return list(self.values)


Dimension = Uniform | LogUniform | IntUniform | Categorical
Space = dict[str, Dimension | Sequence[Any] | Any]
"""A search space: each hyperparameter name maps to a dimension, a list of values, or a constant."""


def _as_dimension(name: str, value: Any) -> Dimension | None:
    if isinstance(value, (Uniform, LogUniform, IntUniform, Categorical)):
        return value
    if isinstance(value, (list, tuple)):
        return Categorical(value)
    return None  # a constant


def grid_configs(space: Space, points: int = 5) -> list[dict[str, Any]]:
    """Every combination: lists as given, continuous dimensions at ``points`` grid values.

    Log-uniform dimensions are gridded geometrically, uniform ones linearly.
    """
    _check.integer("points", points, minimum=1)
    names, axes = [], []
    for name, value in space.items():
        dimension = _as_dimension(name, value)
        names.append(name)
        axes.append(dimension.grid(points) if dimension else [value])
    return [dict(zip(names, combination, strict=False)) for combination in itertools.product(*axes)]


def random_configs(space: Space, num_trials: int, seed: int = 0) -> list[dict[str, Any]]:
    """``num_trials`` independent draws from the space, reproducible by ``seed``."""
    _check.integer("num_trials", num_trials, minimum=1)
    _check.integer("seed", seed, minimum=0)
    rng = np.random.default_rng(seed)
    configs = []
    for _ in range(num_trials):
        config = {}
        for name, value in space.items():
            dimension = _as_dimension(name, value)
            config[name] = dimension.sample(rng) if dimension else value
        configs.append(config)
    return configs
