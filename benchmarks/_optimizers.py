"""The optimizers compared: the same hyperparameters for jopt and optax, by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optax

import jopt

# name -> (factory name shared by both libraries, kwargs, elementwise: fast path is exact)
OPTIMIZERS: dict[str, tuple[str, dict[str, Any], bool]] = {
    "adam": ("adam", {"learning_rate": 1e-3}, True),
    "adamw": ("adamw", {"learning_rate": 1e-3, "weight_decay": 1e-4}, True),
    "sgd_momentum": ("sgd", {"learning_rate": 1e-2, "momentum": 0.9}, True),
    "sgd_nesterov": ("sgd", {"learning_rate": 1e-2, "momentum": 0.9, "nesterov": True}, True),
    "rmsprop": ("rmsprop", {"learning_rate": 1e-3}, True),
    "adagrad": ("adagrad", {"learning_rate": 1e-2}, True),
    "lion": ("lion", {"learning_rate": 1e-4}, True),
    "adabelief": ("adabelief", {"learning_rate": 1e-3}, True),
    "lamb": ("lamb", {"learning_rate": 1e-3}, False),
    "lars": ("lars", {"learning_rate": 1e-3}, False),
    "adafactor": ("adafactor", {"learning_rate": 1e-3}, False),
}


def builders(name: str) -> tuple[Callable[[], Any], Callable[[], Any], Callable[[], Any] | None]:
    """(jopt, optax, jopt fast path or None) transform builders for ``name``."""
    factory, kwargs, elementwise = OPTIMIZERS[name]
    make_jopt = lambda: getattr(jopt, factory)(**kwargs)  # noqa: E731
    make_optax = lambda: getattr(optax, factory)(**kwargs)  # noqa: E731
    make_fast = (lambda: jopt.flat_state(make_jopt())) if elementwise else None
    return make_jopt, make_optax, make_fast
