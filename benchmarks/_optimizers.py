"""The optimizers compared: the same hyperparameters for jopt and optax, by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optax

import jopt


def _clip_by_block_rms_adam(lib: Any, **kwargs: Any) -> Any:
    return lib.chain(lib.clip_by_block_rms(1.0), lib.adam(**kwargs))


# name -> (factory name shared by both libraries, or a recipe ``(library, **kwargs) -> tx``,
# kwargs, whether a FlatTree runs it: the fast path gives the per-leaf result)
OPTIMIZERS: dict[str, tuple[str | Callable[..., Any], dict[str, Any], bool]] = {
    "adam": ("adam", {"learning_rate": 1e-3}, True),
    "adamw": ("adamw", {"learning_rate": 1e-3, "weight_decay": 1e-4}, True),
    "sgd_momentum": ("sgd", {"learning_rate": 1e-2, "momentum": 0.9}, True),
    "sgd_nesterov": ("sgd", {"learning_rate": 1e-2, "momentum": 0.9, "nesterov": True}, True),
    "rmsprop": ("rmsprop", {"learning_rate": 1e-3}, True),
    "adagrad": ("adagrad", {"learning_rate": 1e-2}, True),
    "lion": ("lion", {"learning_rate": 1e-4}, True),
    "adabelief": ("adabelief", {"learning_rate": 1e-3}, True),
    "lamb": ("lamb", {"learning_rate": 1e-3}, True),
    "lars": ("lars", {"learning_rate": 1e-3}, True),
    "novograd": ("novograd", {"learning_rate": 1e-3}, True),
    "clip_block_rms_adam": (_clip_by_block_rms_adam, {"learning_rate": 1e-3}, True),
    "adafactor": ("adafactor", {"learning_rate": 1e-3}, False),
}


def _same(tree: Any) -> Any:
    return tree


def variants(name: str) -> dict[str, tuple[Callable[[], Any], Callable[[Any], Any]]]:
    """Variant name -> (transform builder, layout of params and grads) for ``name``.

    ``jopt`` and ``optax`` run on the tree as it is. For optimizers a FlatTree runs
    (elementwise and per-leaf ones, :mod:`jopt._flat._capability`) two fast paths join:
    ``jopt_fast`` trains a :class:`jopt.FlatTree` (params, grads and state flat for the
    whole run) and ``jopt_flat_state`` keeps only the state flat.
    """
    factory, kwargs, flat_runs = OPTIMIZERS[name]

    def build(lib: Any) -> Any:
        return factory(lib, **kwargs) if callable(factory) else getattr(lib, factory)(**kwargs)

    make_jopt = lambda: build(jopt)  # noqa: E731
    result = {"jopt": (make_jopt, _same), "optax": (lambda: build(optax), _same)}
    if flat_runs:
        result["jopt_fast"] = (make_jopt, jopt.FlatTree.from_tree)
        result["jopt_flat_state"] = (lambda: jopt.flat_state(make_jopt()), _same)
    return result
