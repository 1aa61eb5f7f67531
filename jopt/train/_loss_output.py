"""What a loss or eval function returns, read and checked once at trace time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

Metrics = dict[str, Any]
"""What a step reports: ``{"loss": scalar, **aux}``."""


def describe(out: Any) -> str:
    """A short description of ``out`` for error messages."""
    if isinstance(out, tuple):
        return f"a tuple of {len(out)} items"
    if hasattr(out, "shape"):
        return f"a {type(out).__name__} of shape {out.shape}"
    return f"a {type(out).__name__}"


def scalar_loss(name: str, loss: Any, what: str = "loss") -> None:
    """``loss`` is a scalar array or number: one rule (a TypeError) for every step."""
    if not hasattr(loss, "dtype") and not isinstance(loss, (int, float)):
        raise TypeError(
            f"{name} must return a scalar {what} array, got {describe(loss)}; return e.g. "
            "jnp.mean((predictions - targets) ** 2), or (loss, aux) with has_aux=True"
        )
    if jnp.shape(loss) != ():
        raise TypeError(
            f"{name} must return a scalar {what}, got an array of shape {jnp.shape(loss)}; "
            "reduce it over the batch, e.g. return jnp.mean(per_example_losses)"
        )


def _pair_error(name: str, out: Any, has_aux: bool, with_extras: bool) -> TypeError:
    what = {(True, True): "(loss, (new_extras, aux))", (False, True): "(loss, new_extras)",
            (True, False): "(loss, aux)"}[has_aux, with_extras]  # fmt: skip
    flag = "has_aux=True" if has_aux else "with_extras=True"
    return TypeError(
        f"{name} must return {what} because {flag}, got {describe(out)}; "
        f"return that pair, or pass {flag.replace('True', 'False')}"
    )


def loss_and_rest(out: Any, has_aux: bool, with_extras: bool, name: str) -> tuple[Any, Any]:
    """Split a loss function's output into (loss, rest) and check its shape."""
    if has_aux or with_extras:
        if not (isinstance(out, tuple) and len(out) == 2):
            raise _pair_error(name, out, has_aux, with_extras)
        loss, rest = out
        if has_aux and with_extras and not (isinstance(rest, tuple) and len(rest) == 2):
            raise TypeError(
                f"{name} must return (loss, (new_extras, aux)) because has_aux=True and "
                f"with_extras=True, got (loss, {describe(rest)}); nest the pair, or pass "
                "has_aux=False"
            )
    elif isinstance(out, tuple):
        raise TypeError(
            f"{name} returned a tuple of {len(out)} items but has_aux=False; if the items "
            "after the loss are auxiliary outputs, return (loss, aux) and pass has_aux=True"
        )
    else:
        loss, rest = out, None
    scalar_loss(name, loss)
    return loss, rest


def extras_and_aux(rest: Any, old_extras: Any, has_aux: bool, with_extras: bool) -> tuple:
    """``(new_extras, aux)`` from what follows the loss."""
    if with_extras and has_aux:
        return rest
    if with_extras:
        return rest, None
    return old_extras, rest


def metrics_of(loss: jax.Array, aux: Any) -> Metrics:
    """``{"loss": loss}`` merged with ``aux`` (a dict) or with ``{"aux": aux}``."""
    if aux is None:
        return {"loss": loss}
    if isinstance(aux, Mapping):
        if "loss" in aux:
            raise ValueError(
                "the aux dict returned by the loss function has a 'loss' key, which would "
                "shadow the loss; rename it, e.g. 'loss_part'"
            )
        return {"loss": loss, **aux}
    return {"loss": loss, "aux": aux}


def call(fn, params, extras, batch, rng, with_extras, with_rng):
    """``fn(params[, extras], batch[, rng=rng])`` as the flags say."""
    args = (params, extras, batch) if with_extras else (params, batch)
    return fn(*args, rng=rng) if with_rng else fn(*args)
