"""Population training: K configurations trained at once as one vmapped, compiled program."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jopt import _check, tree
from jopt._flat._tree import model_params
from jopt.base import GradientTransformation, Params, apply_updates
from jopt.train._step import finite_step
from jopt.train.early_stopping import EarlyStopping, EarlyStoppingState
from jopt.tune._results import Results, Trial


class PopulationResult(NamedTuple):
    """What each member reached; every array has a leading member axis of size K.

    Attributes:
      params: final params of each member (frozen where it stopped early).
      history: ``[K, evaluations]`` metric at each evaluation, NaN once stopped.
      stopping: stacked :class:`~jopt.train.EarlyStoppingState` of the members.
      hyperparams: ``{name: [K] values}`` as given.
    """

    params: Params
    history: jax.Array
    stopping: EarlyStoppingState
    hyperparams: dict[str, jax.Array]

    def to_results(self, mode: Literal["min", "max"] = "min") -> Results:
        """The members as :class:`~jopt.tune.Results` trials."""
        names = list(self.hyperparams)
        trials = []
        for k in range(len(self.history)):
            config = {n: float(self.hyperparams[n][k]) for n in names}
            stopped = bool(self.stopping.stopped[k])
            step = int(self.stopping.stopped_epoch[k]) if stopped else self.history.shape[1] - 1
            trials.append(Trial(config, float(self.stopping.best[k]), step, stopped))
        return Results(tuple(trials), mode)


def _member_program(
    make_tx: Callable[..., GradientTransformation],
    tx_names: Sequence[str],
    static_kwargs: Mapping[str, Any],
    loss_fn: Callable[..., jax.Array],
    eval_fn: Callable[..., jax.Array],
    params: Params,
    batches: Any,
    num_steps: int,
    eval_every: int,
    stopper: EarlyStopping,
    with_hyperparams: bool,
) -> Callable[[dict[str, jax.Array]], tuple]:
    """One member's whole training run as a pure function of its hyperparameters."""
    num_batches = jax.tree.leaves(batches)[0].shape[0]

    def extra(hyperparams):
        return {"hyperparams": hyperparams} if with_hyperparams else {}

    def run(hyperparams):
        tx = make_tx(**{n: hyperparams[n] for n in tx_names}, **static_kwargs)
        opt_state = tx.init(params)
        stopping = stopper.init(params if stopper.restore_best else None)

        def train_step(carry, step):
            params_, opt_state_, stopped = carry
            batch = jax.tree.map(lambda b: b[step % num_batches], batches)
            loss, grads = jax.value_and_grad(
                lambda p: loss_fn(model_params(p), batch, **extra(hyperparams))
            )(params_)
            updates, new_opt_state = tx.update(grads, opt_state_, params_)
            # A stopped member keeps its params and state (the population runs in
            # lockstep), and so does one whose step is bad, as in jopt.train.fit.
            keep = stopped | ~finite_step(loss, grads)
            params_ = tree.where(keep, params_, apply_updates(params_, updates))
            opt_state_ = tree.where(keep, opt_state_, new_opt_state)
            return (params_, opt_state_, stopped), None

        def evaluation_period(carry, evaluation):
            params_, opt_state_, stopping_ = carry
            steps = evaluation * eval_every + jnp.arange(eval_every)
            (params_, opt_state_, _), _ = jax.lax.scan(
                train_step, (params_, opt_state_, stopping_.stopped), steps
            )
            metric = eval_fn(model_params(params_), **extra(hyperparams)).astype(jnp.float32)
            recorded = jnp.where(stopping_.stopped, jnp.nan, metric)
            stopping_ = stopper.update(stopping_, metric, evaluation, params_)
            return (params_, opt_state_, stopping_), recorded

        (final, _, stopping), history = jax.lax.scan(
            evaluation_period, (params, opt_state, stopping), jnp.arange(num_steps // eval_every)
        )
        return final, history, stopping

    return run


def train_population(
    make_tx: Callable[..., GradientTransformation],
    hyperparams: Mapping[str, Sequence[float]],
    loss_fn: Callable[..., jax.Array],
    eval_fn: Callable[..., jax.Array],
    params: Params,
    batches: Any,
    num_steps: int,
    eval_every: int = 1,
    early_stopping: EarlyStopping | None = None,
    static_kwargs: Mapping[str, Any] | None = None,
    vectorize: bool = True,
    with_hyperparams: bool = False,
) -> PopulationResult:
    """Train one member per hyperparameter setting, all at once in one compiled program.

    Each member has its own hyperparameters, optimizer state and early-stopping state;
    members share the initial params and the batch order. With ``vectorize=True`` the
    members run under :func:`jax.vmap` (K times the memory of one run); with False they
    run one after the other through the same compiled program (for models that do not fit
    K times), with the same results.

    Args:
      make_tx: an optimizer factory such as :func:`jopt.adam`; hyperparameters whose names
        it accepts are passed to it, the others only to ``loss_fn``/``eval_fn`` when
        ``with_hyperparams`` (penalty strengths, for example).
      hyperparams: ``{name: K values}``, one value per member.
      loss_fn: ``loss_fn(params, batch) -> scalar``, the convention of
        :func:`jopt.train.make_train_step` and :func:`lr_range_test`.
      eval_fn: ``eval_fn(params) -> scalar`` metric watched by early stopping.
      params: initial params, shared by all members; a :class:`jopt.FlatTree` (the fast
        path for many small leaves) reaches ``loss_fn`` and ``eval_fn`` as ``to_tree()``.
      batches: a pytree of arrays with a leading batch-index axis; step ``t`` uses batch
        ``t mod num_batches``. A step whose loss or gradient holds an inf or a NaN is not
        applied (the member's params and optimizer state stay), as in
        :func:`jopt.train.fit`.
      num_steps: optimizer steps per member, a multiple of ``eval_every``.
      eval_every: evaluate every this many steps (evaluation ``i`` follows step
        ``(i + 1) * eval_every``; early stopping counts evaluations).
      early_stopping: an :class:`~jopt.train.EarlyStopping` (default: never stops, min mode).
      static_kwargs: fixed, non-traced keyword arguments of ``make_tx`` (e.g. ``nesterov``).
      vectorize: vmap the members (True) or run them sequentially (False).
      with_hyperparams: also pass the member's ``{name: value}`` to ``loss_fn`` and
        ``eval_fn`` as the keyword ``hyperparams=`` (as ``with_rng`` passes ``rng=``
        in :func:`jopt.train.make_train_step`).
    """
    _check.boolean("with_hyperparams", with_hyperparams)
    _check.function("loss_fn", loss_fn, "lambda params, batch: loss")
    _check.function("eval_fn", eval_fn, "lambda params: metric")
    _check.integer("num_steps", num_steps, minimum=1)
    _check.integer("eval_every", eval_every, minimum=1)
    if num_steps % eval_every:
        raise ValueError(
            f"num_steps must be a multiple of eval_every, got num_steps={num_steps}, "
            f"eval_every={eval_every}; round num_steps to a multiple, e.g. "
            f"{num_steps // eval_every * eval_every or eval_every}"
        )
    if not hyperparams:
        raise ValueError("hyperparams must name at least one hyperparameter with K values")
    values = {n: jnp.asarray(v, jnp.float32) for n, v in hyperparams.items()}
    sizes = {n: v.shape for n, v in values.items()}
    if len({s for s in sizes.values()}) != 1 or len(next(iter(sizes.values()))) != 1:
        raise ValueError(
            f"every hyperparameter needs the same number K of values, got shapes {sizes}"
        )
    accepted = inspect.signature(make_tx).parameters
    tx_names = [n for n in values if n in accepted]
    stopper = early_stopping or EarlyStopping(patience=np.iinfo(np.int32).max)
    run = _member_program(
        make_tx,
        tx_names,
        dict(static_kwargs or {}),
        loss_fn,
        eval_fn,
        params,
        batches,
        num_steps,
        eval_every,
        stopper,
        with_hyperparams,
    )
    if vectorize:
        final, history, stopping = jax.jit(jax.vmap(run))(values)
    else:
        compiled = jax.jit(run)
        members = [
            compiled({n: v[k] for n, v in values.items()})
            for k in range(len(next(iter(values.values()))))
        ]
        final, history, stopping = jax.tree.map(lambda *xs: jnp.stack(xs), *members)
    return PopulationResult(final, history, stopping, values)
