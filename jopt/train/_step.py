"""Jitted training and evaluation steps built from a loss function."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree
from jopt._flat._tree import model_params
from jopt.base import apply_updates, with_extra_args_support
from jopt.train._loss_output import (
    Metrics,
    call,
    describe,
    extras_and_aux,
    loss_and_rest,
    metrics_of,
)
from jopt.train._state import TrainState

_INTEGER_PARAMS_FIX = (
    "gradients exist only for float parameters; cast it, e.g. "
    "jax.tree.map(lambda p: p.astype(jnp.float32), params), or keep integer "
    "state in TrainState.extras"
)


@dataclasses.dataclass(frozen=True, eq=False)
class TrainStep:
    """What :func:`make_train_step` returns: ``step(state, batch) -> (state, metrics)``.

    Calling it runs the step, jitted (when built with ``jit=True``) with the donation
    and shardings asked for. :func:`~jopt.train.fit` and
    :func:`~jopt.train.fit_compiled` recognise it by its type and run its
    :attr:`judged` form, which judges a step before applying it, so a bad step's
    update never runs and the donated state is updated in place; they donate the
    state only when :attr:`donate` is True. Any other callable is run as it is.

    Attributes:
      run: the step, not jitted (for your own ``jit``, ``vmap`` or ``shard_map``).
      judged: ``(state, batch, allow, skip) -> (state, metrics, good)``: ``good`` is a
        finite loss and gradient; the update is applied only when ``allow`` and (good
        or not ``skip``); the shardings are pinned as the jitted step pins them.
      donate: whether the jitted call (and ``fit``) donates the input state.
      jit: whether calling it runs the jitted step.
      state_sharding: shardings of the state, or None.
      batch_sharding: sharding (or pytree of them) of the batch, or None.
      skip_nonfinite: whether a call returns the state unchanged after a bad step
        (``fit`` judges every step by its own ``skip_nonfinite``).
      cache: programs compiled from this step by ``fit`` and the metric names it
        reports, kept as long as the step lives.
      jitted: what a call runs: the :func:`jax.jit` of :attr:`run` (with its ``lower``
        and cache), or :attr:`run` itself when built with ``jit=False``.
    """

    run: Callable[[TrainState, Any], tuple[TrainState, Metrics]]
    judged: Callable[..., tuple[TrainState, Metrics, jax.Array]]
    donate: bool = True
    jit: bool = True
    state_sharding: Any = None
    batch_sharding: Any = None
    skip_nonfinite: bool = False
    cache: dict[Any, Any] = dataclasses.field(default_factory=dict, init=False, repr=False)
    jitted: Callable[..., Any] = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        jitted = self.run
        if self.jit:
            jitted = jax.jit(self.run, **_jit_kwargs(self.donate, self.state_sharding,
                                                    self.batch_sharding))  # fmt: skip
        object.__setattr__(self, "jitted", jitted)

    def __call__(self, state: TrainState, batch: Any) -> tuple[TrainState, Metrics]:
        return self.jitted(state, batch)


def finite_step(loss: Any, grads: Any) -> jax.Array:
    """Whether a step may be applied: its loss and every gradient leaf are finite (the one
    judgement of a step before its update, for ``fit``, ``fit_compiled`` and ``jopt.tune``)."""
    return jnp.isfinite(loss) & tree.all_finite(grads)


def _jit_kwargs(donate: bool, state_sharding: Any, batch_sharding: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"donate_argnums": (0,) if donate else ()}
    if state_sharding is not None or batch_sharding is not None:
        kwargs["in_shardings"] = (state_sharding, batch_sharding)
        kwargs["out_shardings"] = (state_sharding, None)
    return kwargs


def _pinned(value: Any, shardings: Any) -> Any:
    """``value`` constrained to ``shardings`` (a matching pytree of them), or as it is."""
    return value if shardings is None else jax.lax.with_sharding_constraint(value, shardings)


def _step_key(state: TrainState, with_rng: bool) -> jax.Array | None:
    if not with_rng:
        return None
    if state.rng is None:
        raise ValueError(
            "with_rng=True but the state has rng=None; create it with "
            "TrainState.create(params, tx, rng=0) (or any PRNG key)"
        )
    return jax.random.fold_in(state.rng, state.step)


def _gradient_fn(loss_fn: Callable[..., Any], has_aux: bool, with_extras: bool,
                 with_rng: bool) -> Callable[..., tuple]:  # fmt: skip
    """``gradient(state, batch) -> (loss, grads, extras, aux, value_fn)``, nothing applied."""
    name = getattr(loss_fn, "__name__", "loss_fn")

    # Everything the loss reads is an argument, not a closure: Flax NNX refuses to
    # mutate variables (batch statistics) created at an outer trace level.
    def differentiated(params, extras, batch, key):
        out = call(loss_fn, model_params(params), extras, batch, key, with_extras, with_rng)
        return loss_and_rest(out, has_aux, with_extras, name)

    def gradient(state: TrainState, batch: Any) -> tuple[Any, ...]:
        check.train_state("state", state, TrainState)
        check.inexact_leaves("state.params", state.params, _INTEGER_PARAMS_FIX)
        key = _step_key(state, with_rng)

        def value_fn(params):
            return differentiated(params, state.extras, batch, key)[0]

        (loss, rest), grads = jax.value_and_grad(differentiated, has_aux=True)(
            state.params, state.extras, batch, key
        )
        extras, aux = extras_and_aux(rest, state.extras, has_aux, with_extras)
        return loss, grads, extras, aux, value_fn

    return gradient


def _apply(state: TrainState, loss, grads, extras, value_fn) -> TrainState:
    """``tx.update`` (with the loss, gradient and ``value_fn`` as extra arguments), applied."""
    transform = with_extra_args_support(state.tx)
    updates, opt_state = transform.update(
        grads, state.opt_state, state.params, value=loss, grad=grads, value_fn=value_fn
    )
    return state.replace(
        step=state.step + 1,
        params=apply_updates(state.params, updates),
        opt_state=opt_state,
        extras=extras,
    )


def _reporter(grad_norm: bool) -> Callable[..., Metrics]:
    def report(loss, grads, aux) -> Metrics:
        metrics = metrics_of(loss, aux)
        if grad_norm:
            if "grad_norm" in metrics:
                raise ValueError(
                    "the aux dict returned by the loss function has a 'grad_norm' key, which "
                    "grad_norm=True also reports; rename it, or pass grad_norm=False"
                )
            metrics["grad_norm"] = tree.l2_norm(grads)
        return metrics

    return report


def _judge(gradient, report, state_sharding: Any, batch_sharding: Any) -> Callable[..., Any]:
    def judged(state: TrainState, batch: Any, allow: Any, skip: bool):
        # The choice is a branch taken before the update, so the donated state is
        # updated in place: no second copy of it is kept alive.
        state, batch = _pinned(state, state_sharding), _pinned(batch, batch_sharding)
        loss, grads, extras, aux, value_fn = gradient(state, batch)
        good = finite_step(loss, grads)
        keep_new = allow & (good | (not skip))
        new_state = jax.lax.cond(
            keep_new, lambda: _apply(state, loss, grads, extras, value_fn), lambda: state
        )
        return _pinned(new_state, state_sharding), report(loss, grads, aux), good

    return judged


def _plain_step(gradient, report) -> Callable[..., Any]:
    def step(state: TrainState, batch: Any) -> tuple[TrainState, Metrics]:
        loss, grads, extras, aux, value_fn = gradient(state, batch)
        return _apply(state, loss, grads, extras, value_fn), report(loss, grads, aux)

    return step


def _skipping_step(judged) -> Callable[..., Any]:
    def step(state: TrainState, batch: Any) -> tuple[TrainState, Metrics]:
        return judged(state, batch, True, True)[:2]

    return step


def make_train_step(
    loss_fn: Callable[..., Any],
    *,
    has_aux: bool = False,
    grad_norm: bool = False,
    with_extras: bool = False,
    with_rng: bool = False,
    donate: bool = True,
    jit: bool = True,
    state_sharding: Any = None,
    batch_sharding: Any = None,
    skip_nonfinite: bool = False,
) -> TrainStep:
    r"""Build a :class:`TrainStep`, ``step(state, batch) -> (state, metrics)``: gradient,
    ``tx.update``, apply.

    ``tx.update`` receives ``value`` (the loss), ``grad`` and ``value_fn`` (the
    loss as a function of the params on this batch), so line searches
    (:func:`jopt.lbfgs`) and :func:`jopt.reduce_on_plateau` work inside the step.

    The loss function is called as

    - ``loss_fn(params, batch)`` by default,
    - ``loss_fn(params, extras, batch)`` with ``with_extras=True``; it then returns
      ``(loss, new_extras)`` (``(loss, (new_extras, aux))`` with ``has_aux=True``),
    - with ``rng=key`` added as a keyword when ``with_rng=True``; the key is
      ``jax.random.fold_in(state.rng, state.step)``, fresh each step.

    With Flax NNX, split once (``graphdef, params, extras = nnx.split(model,
    nnx.Param, ...)``) and rebuild inside ``loss_fn`` with ``nnx.merge(graphdef,
    params, extras, copy=True)``; return ``nnx.split(model, nnx.Param, ...)[2]`` as
    the new extras. With Linen, ``extras={"batch_stats": ...}`` and
    ``apply(..., mutable=["batch_stats"])``.

    When ``state.params`` is a :class:`jopt.FlatTree` (the fast path for many small
    leaves), ``loss_fn`` receives ``params.to_tree()`` and the optimizer updates the
    flat buffers.

    ``metrics`` is ``{"loss": loss}``, merged with ``aux`` when ``aux`` is a dict
    (else ``{"loss": loss, "aux": aux}``). With ``grad_norm=True`` it also holds
    ``"grad_norm"``, the global norm :math:`\lVert g_t \rVert_2` of this step's
    gradient (before the optimizer), which :class:`~jopt.train.EarlyStopping` can
    watch for gradient-based early stopping.

    The transform is always ``state.tx``: build the state with
    ``TrainState.create(params, tx)``.

    Args:
      loss_fn: returns a scalar loss (and ``aux``/``new_extras`` as above).
      has_aux: ``loss_fn`` also returns auxiliary outputs.
      grad_norm: also report the gradient's global norm as ``metrics["grad_norm"]``.
      with_extras: pass ``state.extras`` to ``loss_fn`` and store what it returns.
      with_rng: pass a per-step PRNG key as ``rng=``.
      donate: donate the input state's buffers (the caller must not reuse it).
      jit: compile the step with :func:`jax.jit` (False: a plain function, for use
        inside your own ``jit``, ``shard_map`` or ``vmap``).
      state_sharding: shardings of the state (a :class:`TrainState` of shardings, see
        :func:`jopt.train.sharding.train_state_shardings`), pinned on input and output.
      batch_sharding: sharding (or pytree of them) of the batch.
      skip_nonfinite: a call whose loss or gradient holds an inf or a NaN returns the
        state unchanged (with that step's metrics). :func:`~jopt.train.fit` judges every
        step by its own ``skip_nonfinite``.

    Example:
      >>> import jax.numpy as jnp, jopt
      >>> loss_fn = lambda p, batch: jnp.mean((batch["x"] @ p["w"] - batch["y"]) ** 2)
      >>> state = jopt.train.TrainState.create({"w": jnp.zeros(2)}, jopt.sgd(0.1))
      >>> step = jopt.train.make_train_step(loss_fn)
      >>> state, metrics = step(state, {"x": jnp.eye(2), "y": jnp.ones(2)})
      >>> int(state.step), float(metrics["loss"])
      (1, 1.0)
    """
    for flag, value in (
        ("has_aux", has_aux), ("grad_norm", grad_norm), ("with_extras", with_extras),
        ("with_rng", with_rng), ("donate", donate), ("jit", jit),
        ("skip_nonfinite", skip_nonfinite),
    ):  # fmt: skip
        check.boolean(flag, value)
    check.function("loss_fn", loss_fn, "lambda params, batch: jnp.mean(...)")
    gradient = _gradient_fn(loss_fn, has_aux, with_extras, with_rng)
    report = _reporter(grad_norm)
    judged = _judge(gradient, report, state_sharding, batch_sharding)
    run = _skipping_step(judged) if skip_nonfinite else _plain_step(gradient, report)
    return TrainStep(run, judged, donate, jit, state_sharding, batch_sharding, skip_nonfinite)


def make_eval_step(
    eval_fn: Callable[..., Any],
    *,
    with_extras: bool = False,
    jit: bool = True,
    state_sharding: Any = None,
    batch_sharding: Any = None,
) -> Callable[[TrainState, Any], Metrics]:
    """Build ``evaluate(state, batch) -> metrics`` (no gradient, the state is unchanged).

    ``eval_fn(params, batch)`` (``eval_fn(params, extras, batch)`` with
    ``with_extras=True``) returns a dict of metrics, or a scalar that is reported
    as ``{"loss": value}``. A :class:`jopt.FlatTree` of params reaches ``eval_fn`` as
    ``params.to_tree()``. Use :mod:`jopt.metrics` with ``mask=`` for padded batches.

    Args:
      eval_fn: computes metrics from the params (and extras) on one batch.
      with_extras: pass ``state.extras`` (e.g. batch statistics in inference mode).
      jit: compile with :func:`jax.jit`.
      state_sharding: shardings of the state, as in :func:`make_train_step`.
      batch_sharding: sharding of the batch.
    """
    check.boolean("with_extras", with_extras)
    check.boolean("jit", jit)
    check.function("eval_fn", eval_fn, "lambda params, batch: {'loss': ...}")

    def evaluate(state: TrainState, batch: Any) -> Metrics:
        check.train_state("state", state, TrainState)
        out = call(
            eval_fn, model_params(state.params), state.extras, batch, None, with_extras, False
        )
        if isinstance(out, Mapping):
            return dict(out)
        if isinstance(out, tuple) or jnp.shape(out) != ():
            raise TypeError(
                f"eval_fn must return a dict of metrics or a scalar, got {describe(out)}; "
                "return e.g. {'loss': loss, 'accuracy': acc}"
            )
        return {"loss": out}

    if not jit:
        return evaluate
    if state_sharding is not None or batch_sharding is not None:
        return jax.jit(evaluate, in_shardings=(state_sharding, batch_sharding))
    return jax.jit(evaluate)
