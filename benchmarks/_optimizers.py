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


def _same(tree: Any) -> Any:
    return tree


def variants(name: str) -> dict[str, tuple[Callable[[], Any], Callable[[Any], Any]]]:
    """Variant name -> (transform builder, layout of params and grads) for ``name``.

    ``jopt`` and ``optax`` run on the tree as it is. For elementwise optimizers two fast
    paths join: ``jopt_fast`` trains a :class:`jopt.FlatTree` (params, grads and state
    flat for the whole run) and ``jopt_flat_state`` keeps only the state flat.
    """
    factory, kwargs, elementwise = OPTIMIZERS[name]
    make_jopt = lambda: getattr(jopt, factory)(**kwargs)  # noqa: E731
    result = {
        "jopt": (make_jopt, _same),
        "optax": (lambda: getattr(optax, factory)(**kwargs), _same),
    }
    if elementwise:
        result["jopt_fast"] = (make_jopt, jopt.FlatTree.from_tree)
        result["jopt_flat_state"] = (lambda: jopt.flat_state(make_jopt()), _same)
    return result
