"""Jitted training and evaluation steps built from a loss function."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree
from jopt._flat._tree import model_params
from jopt.base import apply_updates, with_extra_args_support
from jopt.train._state import TrainState

Metrics = dict[str, Any]
"""What a step reports: ``{"loss": scalar, **aux}``."""

_INTEGER_PARAMS_FIX = (
    "gradients exist only for float parameters; cast it, e.g. "
    "jax.tree.map(lambda p: p.astype(jnp.float32), params), or keep integer "
    "state in TrainState.extras"
)


def _loss_and_rest(out: Any, has_aux: bool, with_extras: bool, name: str) -> tuple[Any, Any]:
    """Split a loss function's output into (loss, rest) and check its shape (at trace time)."""
    wants_pair = has_aux or with_extras
    if wants_pair:
        if not (isinstance(out, tuple) and len(out) == 2):
            what = (
                "(loss, (new_extras, aux))"
                if has_aux and with_extras
                else ("(loss, new_extras)" if with_extras else "(loss, aux)")
            )
            flag = "has_aux=True" if has_aux else "with_extras=True"
            raise TypeError(
                f"{name} must return {what} because {flag}, got {_describe(out)}; "
                f"return that pair, or pass {flag.replace('True', 'False')}"
            )
        loss, rest = out
        if has_aux and with_extras and not (isinstance(rest, tuple) and len(rest) == 2):
            raise TypeError(
                f"{name} must return (loss, (new_extras, aux)) because has_aux=True and "
                f"with_extras=True, got (loss, {_describe(rest)}); nest the pair, or pass "
                "has_aux=False"
            )
    else:
        if isinstance(out, tuple):
            raise TypeError(
                f"{name} returned a tuple of {len(out)} items but has_aux=False; if the items "
                "after the loss are auxiliary outputs, return (loss, aux) and pass has_aux=True"
            )
        loss, rest = out, None
    if not hasattr(loss, "dtype") and not isinstance(loss, (int, float)):
        raise TypeError(
            f"{name} must return a scalar loss array, got {_describe(loss)}; return e.g. "
            "jnp.mean((predictions - targets) ** 2), or (loss, aux) with has_aux=True"
        )
    shape = jnp.shape(loss)
    if shape != ():
        raise TypeError(
            f"{name} must return a scalar loss, got an array of shape {shape}; reduce it over "
            "the batch, e.g. return jnp.mean(per_example_losses)"
        )
    return loss, rest


def _describe(out: Any) -> str:
    if isinstance(out, tuple):
        return f"a tuple of {len(out)} items"
    if hasattr(out, "shape"):
        return f"a {type(out).__name__} of shape {out.shape}"
    return f"a {type(out).__name__}"


def _metrics(loss: jax.Array, aux: Any) -> Metrics:
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


def _call(fn, params, extras, batch, rng, with_extras, with_rng):
    args = (params, extras, batch) if with_extras else (params, batch)
    return fn(*args, rng=rng) if with_rng else fn(*args)


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
) -> Callable[[TrainState, Any], tuple[TrainState, Metrics]]:
    r"""Build ``step(state, batch) -> (state, metrics)``: gradient, ``tx.update``, apply.

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
        ("has_aux", has_aux),
        ("grad_norm", grad_norm),
        ("with_extras", with_extras),
        ("with_rng", with_rng),
        ("donate", donate),
        ("jit", jit),
    ):
        if not isinstance(value, bool):
            raise TypeError(f"{flag} must be True or False, got {value!r}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {loss_fn!r}")
    name = getattr(loss_fn, "__name__", "loss_fn")

    def gradient(state: TrainState, batch: Any) -> tuple[Any, ...]:
        """``(loss, grads, extras, aux, value_fn)``: this batch's gradient, nothing applied."""
        check.train_state("state", state)
        check.inexact_leaves("state.params", state.params, _INTEGER_PARAMS_FIX)
        key = _step_key(state, with_rng)

        # Everything the loss reads is an argument, not a closure: Flax NNX refuses to
        # mutate variables (batch statistics) created at an outer trace level.
        def differentiated(params, extras, batch, key):
            out = _call(loss_fn, model_params(params), extras, batch, key, with_extras, with_rng)
            return _loss_and_rest(out, has_aux, with_extras, name)

        def value_fn(params):
            return differentiated(params, state.extras, batch, key)[0]

        (loss, rest), grads = jax.value_and_grad(differentiated, has_aux=True)(
            state.params, state.extras, batch, key
        )
        if with_extras and has_aux:
            extras, aux = rest
        elif with_extras:
            extras, aux = rest, None
        else:
            extras, aux = state.extras, rest
        return loss, grads, extras, aux, value_fn

    def apply(state: TrainState, loss, grads, extras, value_fn) -> TrainState:
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

    def report(loss, grads, aux) -> Metrics:
        metrics = _metrics(loss, aux)
        if grad_norm:
            if "grad_norm" in metrics:
                raise ValueError(
                    "the aux dict returned by the loss function has a 'grad_norm' key, which "
                    "grad_norm=True also reports; rename it, or pass grad_norm=False"
                )
            metrics["grad_norm"] = tree.l2_norm(grads)
        return metrics

    def step(state: TrainState, batch: Any) -> tuple[TrainState, Metrics]:
        loss, grads, extras, aux, value_fn = gradient(state, batch)
        return apply(state, loss, grads, extras, value_fn), report(loss, grads, aux)

    def guarded(state: TrainState, batch: Any, allow: Any, skip: bool):
        """``(state, metrics, good)``: the step, judged before it is applied (``good``: a
        finite loss and gradient), and applied only when ``allow`` and (good or not
        ``skip``). The choice is a branch taken before the update, so the donated state
        is updated in place: no second copy of it is kept alive. The shardings given to
        make_train_step are pinned as the jitted step pins them."""
        state, batch = _pinned(state, state_sharding), _pinned(batch, batch_sharding)
        loss, grads, extras, aux, value_fn = gradient(state, batch)
        good = jnp.isfinite(loss) & tree.all_finite(grads)
        keep_new = allow & (good | (not skip))
        new_state = jax.lax.cond(
            keep_new, lambda: apply(state, loss, grads, extras, value_fn), lambda: state
        )
        return _pinned(new_state, state_sharding), report(loss, grads, aux), good

    built = step
    if jit:
        kwargs: dict[str, Any] = {"donate_argnums": (0,) if donate else ()}
        if state_sharding is not None or batch_sharding is not None:
            kwargs["in_shardings"] = (state_sharding, batch_sharding)
            kwargs["out_shardings"] = (state_sharding, None)
        built = jax.jit(step, **kwargs)
    # The form jopt.train.fit runs: it judges a step before applying it (see _epoch).
    built.guarded_update = guarded  # type: ignore[attr-defined]
    return built


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
    for flag, value in (("with_extras", with_extras), ("jit", jit)):
        if not isinstance(value, bool):
            raise TypeError(f"{flag} must be True or False, got {value!r}")
    if not callable(eval_fn):
        raise TypeError(f"eval_fn must be callable, got {eval_fn!r}")

    def evaluate(state: TrainState, batch: Any) -> Metrics:
        check.train_state("state", state)
        out = _call(
            eval_fn, model_params(state.params), state.extras, batch, None, with_extras, False
        )
        if isinstance(out, Mapping):
            return dict(out)
        if isinstance(out, tuple) or jnp.shape(out) != ():
            raise TypeError(
                f"eval_fn must return a dict of metrics or a scalar, got {_describe(out)}; "
                "return e.g. {'loss': loss, 'accuracy': acc}"
            )
        return {"loss": out}

    if not jit:
        return evaluate
    if state_sharding is not None or batch_sharding is not None:
        return jax.jit(evaluate, in_shardings=(state_sharding, batch_sharding))
    return jax.jit(evaluate)
