"""assert_matches: a transform against a reference on the same gradients, step by step."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jopt.testing._trees import (
    _all_close,
    _close,
    _without_keys,
    random_like,
)


def _gradient_source(grads: Any, loss: Any, params: Any, seed: int) -> Callable:
    """``(step, params) -> (grads, value)`` from what the user gave.

    ``grads`` None, a tree or a callable; else ``loss``'s value and gradient, cast to each
    param's dtype. The value is None without a loss.
    """
    if grads is None and loss is not None:
        value_and_grad = _jitted_value_and_grad(loss)

        def from_loss(step, p):
            value, g = value_and_grad(p)
            return jax.tree.map(lambda g, x: g.astype(jnp.result_type(x)), g, p), value

        return from_loss
    value_of = (lambda p: None) if loss is None else loss
    if grads is None:
        return lambda step, p: (random_like(params, seed + step), value_of(p))
    if callable(grads):
        return lambda step, p: (grads(p), value_of(p))
    return lambda step, p: (grads, value_of(p))


@functools.lru_cache(maxsize=32)
def _jitted_value_and_grad(loss: Callable) -> Callable:
    # One compiled gradient per loss, shared by every call: the runs then time and test the
    # transforms, and eager runs stay about the transform alone.
    return jax.jit(jax.value_and_grad(loss))


def _stepper(tx: Any, jit: bool, extra_args: dict, loss: Any, loss_args: bool) -> Callable:
    def update(params, state, grads, value):
        extra = {"value": value, "grad": grads, "value_fn": loss} if loss_args else {}
        return tx.update(grads, state, params, **extra, **extra_args)

    # Only update is compiled: returning the new params too costs ~20% more compile time,
    # and adding the updates eagerly is the same arithmetic for both transforms.
    update = jax.jit(update) if jit else update

    def step(params, state, grads, value):
        updates, state = update(params, state, grads, value)
        new = jax.tree.map(lambda p, u: jnp.asarray(p + u, jnp.result_type(p)), params, updates)
        return updates, new, state

    return step


def _by_path(tree: Any) -> dict:
    """``{leaf path: leaf}``: states of two libraries compare although their classes differ."""
    return {jax.tree_util.keystr(p): x for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _layout(tree: Any) -> tuple[str, list]:
    """The structure with NamedTuple class names (not their modules), leaf dtypes and shapes."""
    leaves, treedef = jax.tree.flatten(tree)
    return str(treedef), [(str(jnp.result_type(x)), jnp.shape(x)) for x in leaves]


def _compare_step(what: str, ours: tuple, ref: tuple, options: dict, tol: tuple) -> None:
    """Compare ``(updates, params, state)`` of one step: one quick check, details on failure."""
    (ours_u, ours_p, ours_s), (ref_u, ref_p, ref_s) = ours, ref
    if options["layout"] and _layout(ours_s) != _layout(ref_s):
        raise AssertionError(
            f"{what}: state layouts differ (structure, leaf dtypes and shapes):\n"
            f"  {_layout(ours_s)}\nvs the reference's\n  {_layout(ref_s)}"
        )
    if not options["update_dtypes"]:  # values only: cast to the reference's dtypes
        ours_u = jax.tree.map(lambda u, r: jnp.asarray(u, jnp.result_type(r)), ours_u, ref_u)
    ours_s, ref_s = _by_path(ours_s), _by_path(ref_s)
    if not options["check_state"] or ours_s.keys() != ref_s.keys():
        ours_s = ref_s = {}
    if _all_close(*_without_keys(((ours_u, ours_p, ours_s), (ref_u, ref_p, ref_s))), *tol):
        return
    _close(f"{what}: updates differ", ours_u, ref_u, *tol)
    _close(f"{what}: params differ", ours_p, ref_p, *tol)
    _close(f"{what}: states differ", ours_s, ref_s, *tol)


def assert_matches(
    tx: Any,
    reference: Any,
    params: Any,
    *,
    steps: int = 10,
    grads: Any = None,
    loss: Callable[[Any], Any] | None = None,
    loss_args: bool = False,
    seed: int = 0,
    jit: bool | str = True,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    check_state: bool = True,
    state_layout: bool = False,
    update_dtypes: bool = True,
    **extra_args: Any,
) -> None:
    """Assert that ``tx`` gives ``reference``'s updates, step by step.

    Both transforms (any objects with optax's ``init``/``update``: jopt, optax or your own) start
    from ``params`` and see the same gradients for ``steps`` steps; each applies its own updates.
    The first difference raises an ``AssertionError`` naming the run (eager or jit), the step,
    and the leaf path of the update, the params or (with ``check_state``, where both states have
    leaves at the same paths) the state.

    Args:
      tx: the transform under test.
      reference: the transform it should match, e.g. ``optax.adam(1e-3)``.
      params: the initial parameter pytree.
      steps: number of update steps.
      grads: ``None`` (random normal gradients, a new draw each step from ``seed``, unless
        ``loss`` is given), one tree (the same every step), or a callable ``params -> grads``
        (e.g. ``jax.grad(loss)``).
      loss: a scalar function of the params, e.g. :func:`bumpy_loss`. Without ``grads``, each
        run's gradients are ``loss``'s gradient at its own current params (compiled once per
        loss, cast to each param's dtype), so the runs follow their own trajectories.
      loss_args: also pass ``value=loss(params)``, ``grad=`` the gradients and
        ``value_fn=loss`` to every ``update``, the extra arguments that line searches
        (``scale_by_backtracking_linesearch``, ``scale_by_zoom_linesearch``), Polyak steps
        and ``reduce_on_plateau`` read. Needs ``loss``.
      seed: seed of the generated gradients.
      jit: ``True`` runs both under ``jax.jit``, ``False`` eagerly, ``"both"`` both ways.
      rtol, atol: tolerances of the comparison (``|a - b| <= atol + rtol * |b|``).
      check_state: also compare the states' leaves when their paths agree.
      state_layout: also require the reference's state layout after the first and the last
        step: the same structure, NamedTuple class names included, and the same leaf dtypes
        and shapes (what code that reaches into a state, ``state[0].mu``, and saved
        checkpoints rely on).
      update_dtypes: require the updates' dtypes to be the reference's; False compares their
        values only (optax returns float32 updates for bfloat16 params in places where a
        transform may rightly keep bfloat16). The params' dtypes are always compared.
      **extra_args: passed to both ``update`` calls (e.g. ``value=...`` for a line search).

    Example:
      >>> import jax.numpy as jnp, jopt, jopt.testing
      >>> jopt.testing.assert_matches(jopt.sgd(0.1), jopt.sgd(0.1), {"w": jnp.ones(3)}, steps=2)
    """
    modes = (False, True) if jit == "both" else (bool(jit),)
    source = _gradient_source(grads, loss, params, seed)
    options = {"check_state": check_state, "update_dtypes": update_dtypes}
    for mode in modes:
        run = "jit" if mode else "eager"
        ours_step, ref_step = (
            _stepper(t, mode, extra_args, loss, loss_args) for t in (tx, reference)
        )
        ours, theirs = params, params
        ours_state, ref_state = tx.init(params), reference.init(params)
        for t in range(steps):
            ours_u, ours, ours_state = ours_step(ours, ours_state, *source(t, ours))
            ref_u, theirs, ref_state = ref_step(theirs, ref_state, *source(t, theirs))
            # The layout is checked once at the start and once at the end: it costs more
            # than the values, and a state that changes it in between breaks jit anyway.
            options["layout"] = state_layout and t in (0, steps - 1)
            _compare_step(
                f"{run} step {t}",
                (ours_u, ours, ours_state),
                (ref_u, theirs, ref_state),
                options,
                (rtol, atol),
            )
