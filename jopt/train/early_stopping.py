"""Early stopping as a pure state machine: a static config and a pytree state.

The rule is Keras's: training stops after ``patience`` consecutive evaluations
without an improvement larger than ``min_delta`` in the direction of ``mode``.
(``flax.training.early_stopping.EarlyStopping`` stops one evaluation later, only
minimises, and mixes config with state.) A non-finite metric stops at once.

Everything in :meth:`EarlyStopping.update` is ``jnp``, so it runs the same
eagerly, under ``jax.jit`` and inside ``lax.scan``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree as jtree
from jopt.base import Params
from jopt.schedules._hyper import zero_count

__all__ = [
    "EarlyStopping",
    "EarlyStoppingState",
]


class EarlyStoppingState(NamedTuple):
    """State of :class:`EarlyStopping`: arrays only, so it jits, scans and checkpoints."""

    best: jax.Array  # float32 scalar, best metric so far (+inf for "min", -inf for "max")
    best_epoch: jax.Array  # int32 scalar, step of the best metric (-1 before any)
    wait: jax.Array  # int32 scalar, evaluations since the last improvement
    stopped: jax.Array  # bool scalar, True once training should stop
    stopped_epoch: jax.Array  # int32 scalar, step at which it stopped (-1 while running)
    has_improved: jax.Array  # bool scalar, whether the last evaluation improved
    best_params: Any  # params at best_epoch when restore_best, else None


@dataclasses.dataclass(frozen=True)
class EarlyStopping:
    """Stop when a monitored metric has stopped improving (Keras semantics).

    At each evaluation ``wait`` grows by one. A metric better than ``best`` by
    more than ``min_delta`` becomes the new ``best`` and resets ``wait`` to 0
    (when ``baseline`` is set, only if it also beats the baseline). Otherwise,
    once ``wait >= patience``, training stops. A NaN or infinite metric stops
    training at once. With ``stopping_threshold``, training also stops as soon as
    the metric reaches it (``<=`` for ``"min"``, ``>=`` for ``"max"``), as PyTorch
    Lightning's ``EarlyStopping(stopping_threshold=...)`` does: with
    ``monitor="grad_norm"`` (see ``make_train_step(grad_norm=True)``) that is
    gradient-based early stopping, "stop once the gradient is small".

    Evaluations are counted in epochs (``best_epoch`` and ``stopped_epoch`` hold the
    epoch of :meth:`update`'s ``epoch`` argument).

    Attributes:
      monitor: name of the metric to watch in the evaluation dict, e.g. ``"val_loss"``.
      mode: ``"min"`` (lower is better) or ``"max"``.
      min_delta: smallest change that counts as an improvement, >= 0 (default 0).
      patience: evaluations without improvement before stopping, an integer >= 0 (default 0).
      baseline: a value the metric must beat before ``wait`` resets, or None (default).
      start_from_epoch: evaluations at epochs below this are ignored, an integer >= 0.
      restore_best: keep a copy of the params at the best evaluation in the state.
      stopping_threshold: stop as soon as the metric reaches this value, or None (default).

    References:
      Keras ``EarlyStopping`` (patience, ``min_delta``, ``baseline``); PyTorch Lightning
      ``EarlyStopping`` (``stopping_threshold``).

    Example:
      >>> stopper = EarlyStopping(monitor="val_loss", patience=2)
      >>> state = stopper.init()
      >>> for epoch, loss in enumerate([3.0, 2.0, 2.5, 2.4]):
      ...     state = stopper.update(state, loss, epoch)
      >>> bool(state.stopped), int(state.best_epoch)
      (True, 1)
    """

    monitor: str = "val_loss"
    mode: Literal["min", "max"] = "min"
    min_delta: float = 0.0
    patience: int = 0
    baseline: float | None = None
    start_from_epoch: int = 0
    restore_best: bool = False
    stopping_threshold: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.monitor, str) or not self.monitor:
            raise TypeError(
                f"monitor must be a non-empty metric name, got {self.monitor!r}; "
                "pass the key of the evaluation dict to watch, e.g. 'val_loss'"
            )
        check.one_of("mode", self.mode, ("min", "max"))
        for name in ("min_delta", "baseline", "stopping_threshold"):
            check.not_schedule(
                name, getattr(self, name), "early stopping compares each evaluation with a "
                "fixed number; pass one, e.g. 1e-3",
            )  # fmt: skip
        check.non_negative(
            "min_delta",
            self.min_delta,
            "pass the smallest change that counts as an improvement, e.g. 1e-4; "
            "the direction comes from mode",
        )
        check.integer("patience", self.patience, 0, "pass 0 to stop at the first non-improvement")
        check.optional(check.number, "baseline", self.baseline)
        check.optional(check.number, "stopping_threshold", self.stopping_threshold)
        check.integer("start_from_epoch", self.start_from_epoch, 0)
        check.boolean("restore_best", self.restore_best)

    def init(self, params: Params | None = None) -> EarlyStoppingState:
        """The state before any evaluation; ``params`` is required when ``restore_best``."""
        if self.restore_best and params is None:
            raise ValueError(
                "params must be given to EarlyStopping.init when restore_best=True; "
                "pass the initial params so the best ones can be kept"
            )
        worst = jnp.inf if self.mode == "min" else -jnp.inf
        minus_one = jnp.asarray(-1, jnp.int32)
        return EarlyStoppingState(
            best=jnp.asarray(worst, jnp.float32),
            best_epoch=minus_one,
            wait=zero_count(),
            stopped=jnp.asarray(False),
            stopped_epoch=minus_one,
            has_improved=jnp.asarray(False),
            # A copy, so that donating the live params does not delete the best ones.
            best_params=jax.tree.map(jnp.copy, params) if self.restore_best else None,
        )

    def _beats(self, metric: jax.Array, reference: Any) -> jax.Array:
        if self.mode == "min":
            return metric + self.min_delta < reference
        return metric - self.min_delta > reference

    def _reaches(self, metric: jax.Array) -> jax.Array:
        threshold = jnp.float32(self.stopping_threshold)
        return metric <= threshold if self.mode == "min" else metric >= threshold

    def update(
        self, state: EarlyStoppingState, metric: Any, epoch: Any, params: Params | None = None
    ) -> EarlyStoppingState:
        """Record one evaluation of the monitored metric after ``epoch``; return the new state.

        Once ``state.stopped`` is True the state no longer changes.

        Args:
          state: the state from :meth:`init` or the previous update.
          metric: the monitored metric's value (a scalar).
          epoch: the epoch (evaluation index) it was measured at; compared with
            ``start_from_epoch`` and recorded in ``best_epoch``/``stopped_epoch``.
          params: the params that produced it (required when ``restore_best``).
        """
        if self.restore_best and params is None:
            raise ValueError(
                "params must be given to EarlyStopping.update when restore_best=True; "
                "pass the params that produced this metric"
            )
        metric = jnp.asarray(metric, jnp.float32)
        epoch = jnp.asarray(epoch, jnp.int32)
        active = jnp.logical_and(~state.stopped, epoch >= self.start_from_epoch)
        finite = jnp.isfinite(metric)
        improved = active & finite & self._beats(metric, state.best)
        reset = improved
        if self.baseline is not None:
            reset = improved & self._beats(metric, jnp.float32(self.baseline))
        wait = jnp.where(active, jnp.where(reset, 0, state.wait + 1), state.wait)
        stop_now = active & (~finite | (~improved & (wait >= self.patience)))
        if self.stopping_threshold is not None:
            stop_now = stop_now | (active & self._reaches(metric))
        best_params = state.best_params
        if self.restore_best:
            best_params = jtree.where(improved, params, state.best_params)
        return EarlyStoppingState(
            best=jnp.where(improved, metric, state.best),
            best_epoch=jnp.where(improved, epoch, state.best_epoch),
            wait=wait.astype(jnp.int32),
            stopped=state.stopped | stop_now,
            stopped_epoch=jnp.where(stop_now, epoch, state.stopped_epoch),
            has_improved=improved,
            best_params=best_params,
        )
