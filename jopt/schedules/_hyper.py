"""Hyperparameters that may be numbers or schedules of the step count."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from jopt.base import ScalarOrSchedule


def value_at(hyperparameter: ScalarOrSchedule, count: Any) -> Any:
    """The hyperparameter's value at step ``count`` (a number is returned unchanged)."""
    return hyperparameter(count) if callable(hyperparameter) else hyperparameter


def zero_count() -> jnp.ndarray:
    """A counter at zero (steps, plateau or non-finite counts): an int32 scalar."""
    return jnp.zeros([], jnp.int32)
