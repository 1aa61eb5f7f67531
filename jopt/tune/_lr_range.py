"""The learning-rate range test (Smith, 2017): sweep the learning rate up, watch the loss."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jopt import _check
from jopt.base import GradientTransformation, Params, apply_updates
from jopt.train._plotting import figure


class LRRangeResult(NamedTuple):
    """The sweep, up to where the loss diverged, and the suggestion.

    Attributes:
      learning_rates: the learning rate of each step.
      losses: the raw loss of each step.
      smoothed: the bias-corrected exponential moving average of the losses.
      suggestion: the suggested learning rate.
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggestion: float

    def plot(self, path: str) -> None:
        """Smoothed loss against the learning rate (log axis), with the suggestion, to PNG."""
        fig = figure((5, 3.2))
        ax = fig.subplots()
        ax.plot(self.learning_rates, self.losses, alpha=0.3, label="loss")
        ax.plot(self.learning_rates, self.smoothed, label="smoothed")
        ax.axvline(
            self.suggestion,
            color="tab:red",
            linestyle="--",
            label=f"suggestion {self.suggestion:.2e}",
        )
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=110)


def lr_range_test(
    make_tx: Callable[..., GradientTransformation],
    loss_fn: Callable[[Params, Any], jax.Array],
    params: Params,
    batches: Any,
    min_lr: float = 1e-6,
    max_lr: float = 10.0,
    num_steps: int = 100,
    smoothing: float = 0.9,
    divergence_factor: float = 4.0,
) -> LRRangeResult:
    r"""Train briefly with an exponentially increasing learning rate and suggest one.

    .. math::  \eta_t = \eta_{\min}\,(\eta_{\max}/\eta_{\min})^{t/(T-1)}

    The sweep is one compiled ``lax.scan``. The curve is cut where the smoothed loss
    exceeds ``divergence_factor`` times its minimum; the suggestion is the learning rate
    at the minimum of the smoothed loss divided by 10, the rule of thumb of Smith's test
    (the fastest stable rate sits about a decade below where the loss bottoms out).

    Args:
      make_tx: factory taking ``learning_rate`` (a schedule is passed), e.g. :func:`jopt.adam`.
      loss_fn: ``loss_fn(params, batch) -> scalar``.
      params: initial params.
      batches: pytree of arrays with a leading batch-index axis, cycled through.
      min_lr, max_lr: the sweep's range, ``0 < min_lr < max_lr``.
      num_steps: steps of the sweep, >= 2.
      smoothing: decay of the loss's moving average, in [0, 1).
      divergence_factor: cut the curve once the smoothed loss exceeds this times its minimum, > 1.

    References:
      Smith, *Cyclical Learning Rates for Training Neural Networks* (WACV 2017).
    """
    _check.positive("min_lr", min_lr)
    _check.positive("max_lr", max_lr)
    if not min_lr < max_lr:
        raise ValueError(f"max_lr must be > min_lr, got min_lr={min_lr!r}, max_lr={max_lr!r}")
    _check.integer("num_steps", num_steps, minimum=2)
    _check.unit_interval("smoothing", smoothing)
    _check.greater_than("divergence_factor", divergence_factor, 1.0)
    ratio = max_lr / min_lr

    def schedule(count):
        return min_lr * ratio ** (count / (num_steps - 1))

    tx = make_tx(learning_rate=schedule)
    num_batches = jax.tree.leaves(batches)[0].shape[0]

    @jax.jit
    def sweep(params):
        def body(carry, step):
            params_, state = carry
            batch = jax.tree.map(lambda b: b[step % num_batches], batches)
            loss, grads = jax.value_and_grad(loss_fn)(params_, batch)
            updates, state = tx.update(grads, state, params_)
            return (apply_updates(params_, updates), state), loss

        _, losses = jax.lax.scan(body, (params, tx.init(params)), jnp.arange(num_steps))
        return losses

    losses = np.asarray(sweep(params), np.float64)
    rates = min_lr * ratio ** (np.arange(num_steps) / (num_steps - 1))
    smoothed, average = np.empty(num_steps), 0.0
    for t, loss in enumerate(losses):
        average = smoothing * average + (1 - smoothing) * loss
        smoothed[t] = average / (1 - smoothing ** (t + 1))
    end = num_steps
    for t in range(num_steps):
        if not math.isfinite(smoothed[t]) or smoothed[t] > divergence_factor * np.nanmin(
            smoothed[: t + 1]
        ):
            end = max(t, 2)
            break
    best = int(np.nanargmin(smoothed[:end]))
    return LRRangeResult(rates[:end], losses[:end], smoothed[:end], float(rates[best] / 10))
