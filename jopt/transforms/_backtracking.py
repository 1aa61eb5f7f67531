"""Backtracking line search: shrink the step until the objective decreases enough (Armijo)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree as jtree
from jopt.base import GradientTransformationExtraArgs, Updates
from jopt.schedules._hyper import zero_count
from jopt.transforms import _linesearch as ls


class BacktrackingLinesearchInfo(NamedTuple):
    """What the last backtracking search did, for debugging."""

    num_linesearch_steps: jax.Array  # int32 scalar, evaluations of value_fn in the last search
    decrease_error: jax.Array  # scalar, > 0 when no step gave a sufficient decrease


class ScaleByBacktrackingLinesearchState(NamedTuple):
    """State of :func:`scale_by_backtracking_linesearch`."""

    learning_rate: jax.Array  # scalar, params' real dtype: the step size accepted last
    value: jax.Array  # scalar, params' real dtype: objective at the accepted point
    grad: Updates | None  # like params: gradient there (store_grad=True), else None
    info: BacktrackingLinesearchInfo


class _Search(NamedTuple):
    """Carry of the inner loop."""

    learning_rate: jax.Array
    new_value: jax.Array
    new_grad: Updates
    decrease_error: jax.Array
    iter_num: jax.Array


class _Rules(NamedTuple):
    """The search's constants (Python numbers, or scalars traced by inject_hyperparams)."""

    max_backtracking_steps: Any
    slope_rtol: Any
    decrease_factor: Any
    increase_factor: Any
    max_learning_rate: Any
    atol: Any
    rtol: Any
    store_grad: bool


def _initial_state(params, store_grad):
    dtype = ls.value_dtype(params)
    return ScaleByBacktrackingLinesearchState(
        learning_rate=jnp.array(1.0, dtype),
        value=jnp.array(jnp.inf, dtype),
        grad=jtree.zeros_like(params) if store_grad else None,
        info=BacktrackingLinesearchInfo(
            # Explicit dtypes: a weakly typed scalar here would retrace the second step.
            num_linesearch_steps=zero_count(),
            decrease_error=jnp.array(jnp.inf, dtype),
        ),
    )


def _decrease_error(rules, step, slope, value, new_value):
    """How far ``new_value`` misses Armijo's sufficient decrease (0 when met, inf when NaN)."""
    error = new_value - (1.0 + rules.rtol) * value - step * rules.slope_rtol * slope
    return jnp.maximum(jnp.where(jnp.isnan(error), jnp.inf, error), 0.0)


def _searching(rules, search):
    return ~(search.decrease_error <= rules.atol) & (
        search.iter_num <= rules.max_backtracking_steps
    )


def _trial(rules, objective, params, updates, value, slope, search):
    """Evaluate one trial step (the initial guess first, then shrunk ones)."""
    step = jnp.where(
        search.iter_num > 0, rules.decrease_factor * search.learning_rate, search.learning_rate
    )
    trial = jtree.add_scale(params, step, updates)
    if rules.store_grad:
        # One forward pass gives the value; the pullback is paid only at the
        # accepted point, which is the last one evaluated.
        new_value, pullback = jax.vjp(objective, trial)
        error = _decrease_error(rules, step, slope, value, new_value)
        new_grad = jax.lax.cond(
            (error <= rules.atol) | (search.iter_num == rules.max_backtracking_steps),
            lambda: pullback(jnp.ones_like(new_value))[0],
            lambda: search.new_grad,
        )
    else:
        new_value = objective(trial)
        error = _decrease_error(rules, step, slope, value, new_value)
        new_grad = search.new_grad
    new = _Search(step, new_value, new_grad, error, search.iter_num + 1)
    return jtree.cast_like(new, search)


def _search(rules, objective, updates, state, params, value, slope):
    """Shrink the step from the grown previous one until the decrease suffices."""
    start = _Search(
        learning_rate=jnp.minimum(
            rules.increase_factor * state.learning_rate, rules.max_learning_rate
        ),
        new_value=jnp.asarray(value),
        new_grad=jtree.zeros_like(params),
        decrease_error=jnp.array(jnp.inf),
        iter_num=jnp.asarray(0),
    )
    return jax.lax.while_loop(
        lambda search: _searching(rules, search),
        lambda search: _trial(rules, objective, params, updates, value, slope, search),
        start,
    )


def _report_failure(rules, search, value, slope):
    ls.cond_print(
        search.decrease_error > rules.atol,
        "jopt.scale_by_backtracking_linesearch: no step size gave a sufficient "
        "decrease (value {value}, slope {slope}, step {step}, decrease error {error}); "
        "check that the updates are a descent direction",
        value=value,
        slope=slope,
        step=search.learning_rate,
        error=search.decrease_error,
    )


def scale_by_backtracking_linesearch(
    max_backtracking_steps: int,
    slope_rtol: float = 1e-4,
    decrease_factor: float = 0.8,
    increase_factor: float = 1.5,
    max_learning_rate: float = 1.0,
    atol: float = 0.0,
    rtol: float = 0.0,
    store_grad: bool = False,
    verbose: bool = False,
) -> GradientTransformationExtraArgs:
    r"""Scale the updates by a step size that decreases the objective enough (Armijo).

    Starting from :math:`\eta = \min(\gamma_{inc}\,\eta_{prev}, \eta_{max})`, the step
    is multiplied by ``decrease_factor`` until

    .. math::
      f(w + \eta u) \le (1 + \delta) f(w) + c\,\eta\,\langle u, \nabla f(w)\rangle + \epsilon,

    then the updates become :math:`\eta u`. :math:`u` must be a descent direction
    (:math:`\langle u, \nabla f(w)\rangle < 0`), e.g. the output of ``sgd``. When no
    step gives a finite value, the step is 0.

    ``update`` takes the keyword arguments ``value`` (:math:`f(w)`), ``grad``
    (:math:`\nabla f(w)`), ``value_fn`` (:math:`f`) and any argument ``value_fn``
    takes besides the params (e.g. a batch).

    Args:
      max_backtracking_steps: most reductions of the step in one search, integer >= 0.
      slope_rtol: :math:`c`, in [0, 1); default 1e-4.
      decrease_factor: factor shrinking the step, in (0, 1); default 0.8.
      increase_factor: factor growing the previous step to start the next search,
        > 0 (1 keeps it, ``math.inf`` restarts from ``max_learning_rate``); default 1.5.
      max_learning_rate: largest step, > 0; default 1.0.
      atol: :math:`\epsilon`, >= 0; default 0.
      rtol: :math:`\delta`, >= 0; default 0.
      store_grad: also store :math:`\nabla f` at the accepted point, so that
        :func:`value_and_grad_from_state` can reuse it; default False.
      verbose: print a diagnosis when a search fails; default False.

    References:
      Vaswani et al., `Painless Stochastic Gradient <https://arxiv.org/abs/1905.09997>`_, 2019.
      Nocedal & Wright, Numerical Optimization, 1999, Algorithm 3.1.
    """
    check.iterations("max_backtracking_steps", max_backtracking_steps, 0)
    check.unit_interval("slope_rtol", slope_rtol, "pass a value in [0, 1) such as 1e-4")
    check.positive("decrease_factor", decrease_factor, "pass a value in (0, 1) such as 0.8")
    check.unit_interval("decrease_factor", decrease_factor, "pass a value in (0, 1) such as 0.8")
    check.positive_or_inf("increase_factor", increase_factor, "pass a value >= 1 such as 1.5")
    check.positive("max_learning_rate", max_learning_rate, "pass a step size such as 1.0")
    check.non_negative("atol", atol)
    check.non_negative("rtol", rtol)
    check.boolean("store_grad", store_grad)
    check.boolean("verbose", verbose)

    def init(params):
        return _initial_state(params, store_grad)

    rules = _Rules(
        max_backtracking_steps, slope_rtol, decrease_factor, increase_factor,
        max_learning_rate, atol, rtol, store_grad,
    )  # fmt: skip

    def update(
        updates,
        state,
        params,
        *,
        value: jax.Array,
        grad: Updates,
        value_fn: Callable[..., jax.Array],
        **extra_args: Any,
    ):
        fn_kwargs = ls.split_value_fn_kwargs(
            value_fn, extra_args, "scale_by_backtracking_linesearch"
        )
        objective = lambda p: value_fn(p, **fn_kwargs)  # noqa: E731
        slope = ls.slope(updates, grad)
        search = _search(rules, objective, updates, state, params, value, slope)
        # An infinite error means every trial left the domain: do not move.
        learning_rate = jnp.where(jnp.isinf(search.decrease_error), 0.0, search.learning_rate)
        if verbose:
            _report_failure(rules, search, value, slope)
        new_state = ScaleByBacktrackingLinesearchState(
            learning_rate=learning_rate,
            value=search.new_value,
            grad=search.new_grad if store_grad else None,
            info=BacktrackingLinesearchInfo(search.iter_num, search.decrease_error),
        )
        return jtree.scale(learning_rate, updates), jtree.cast_like(new_state, state)

    return GradientTransformationExtraArgs(init, update)
