"""Zoom line search: a step size with sufficient decrease and small curvature (strong Wolfe)."""

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
from jopt.transforms._zoom_search import make_zoom_step


class ZoomLinesearchInfo(NamedTuple):
    """What the last zoom search did, for debugging.

    A positive ``decrease_error`` means the step may not decrease the objective;
    a positive ``curvature_error`` only that the step is not a Wolfe step (often
    because ``max_learning_rate`` is too small).
    """

    num_linesearch_steps: jax.Array  # int32 scalar, evaluations in the last search
    decrease_error: jax.Array  # float32 scalar, 0 when sufficient decrease holds
    curvature_error: jax.Array  # float32 scalar, 0 when the curvature condition holds


class ScaleByZoomLinesearchState(NamedTuple):
    """State of :func:`scale_by_zoom_linesearch`."""

    learning_rate: jax.Array  # scalar, params' real dtype: the step size accepted last
    value: jax.Array  # scalar, params' real dtype: objective at the accepted point
    grad: Updates  # like params: gradient at the accepted point
    info: ZoomLinesearchInfo


def scale_by_zoom_linesearch(
    max_linesearch_steps: int,
    max_learning_rate: float | None = None,
    tol: float = 0.0,
    increase_factor: float = 2.0,
    slope_rtol: float = 1e-4,
    curv_rtol: float = 0.9,
    approx_dec_rtol: float | None = 1e-6,
    stepsize_precision: float = 1e-5,
    initial_guess_strategy: str = "keep",
    verbose: bool = False,
) -> GradientTransformationExtraArgs:
    r"""Scale the updates by a step size satisfying the strong Wolfe conditions.

    The step :math:`\eta` is searched so that

    .. math::
      f(w + \eta u) \le f(w) + c_1 \eta \langle u, \nabla f(w)\rangle + \epsilon,
      \qquad
      |\langle \nabla f(w + \eta u), u\rangle| \le c_2 |\langle \nabla f(w), u\rangle| + \epsilon,

    first by growing the step until a bracket is found, then by zooming into it
    with cubic, quadratic or bisection steps. Near a minimum, where the first
    (Armijo) test cannot resolve the decrease, Hager & Zhang's approximate test
    :math:`\langle \nabla f(w+\eta u), u\rangle \le (2c_1 - 1)\langle \nabla f(w), u\rangle`
    is accepted when :math:`f(w + \eta u) \le f(w) + c_3 |f(w)|`.

    ``update`` takes the keyword arguments ``value``, ``grad``, ``value_fn`` and any
    argument ``value_fn`` takes besides the params. The state stores the value and
    gradient at the accepted point, for :func:`value_and_grad_from_state`.

    Args:
      max_linesearch_steps: most evaluations in one search, integer >= 1.
      max_learning_rate: largest step, > 0, or None for no bound; default None.
      tol: :math:`\epsilon`, >= 0; default 0.
      increase_factor: growth of the step while bracketing, > 0 (> 1 to grow); default 2.
      slope_rtol: :math:`c_1`, in [0, 1); default 1e-4.
      curv_rtol: :math:`c_2`, >= ``slope_rtol`` (``math.inf`` drops the curvature test); 0.9.
      approx_dec_rtol: :math:`c_3`, >= 0, or None to use Armijo only; default 1e-6.
      stepsize_precision: a bracket narrower than this ends the search once a step
        with sufficient decrease is known, >= 0; default 1e-5.
      initial_guess_strategy: ``'keep'`` starts from the previous step (for SGD-like
        directions), ``'one'`` from 1 (for Newton-like directions such as L-BFGS).
      verbose: print optax's diagnosis (its ``INFO`` block: value and slope at the start,
        the step reached, both errors, then the reason) when a search fails or stops at
        ``max_learning_rate`` without a bracket; default False.

    References:
      Nocedal & Wright, Numerical Optimization, 1999, Algorithms 3.5 and 3.6.
      Hager & Zhang, `Algorithm 851: CG_DESCENT <https://doi.org/10.1145/1132973.1132979>`_,
      2006.
    """
    check.iterations("max_linesearch_steps", max_linesearch_steps, 1)
    check.optional(check.positive, "max_learning_rate", max_learning_rate)
    check.non_negative("tol", tol)
    # A factor <= 1 shrinks (or keeps) the step while bracketing: a poor search but a
    # defined one, which optax runs; only a non-positive step has no meaning.
    check.positive("increase_factor", increase_factor, "pass a value > 1 such as 2.0")
    check.unit_interval("slope_rtol", slope_rtol, "pass a value in [0, 1) such as 1e-4")
    check.positive_or_inf("curv_rtol", curv_rtol, "pass a value in (slope_rtol, 1) such as 0.9")
    _curvature_above_slope(slope_rtol, curv_rtol)
    check.optional(check.non_negative, "approx_dec_rtol", approx_dec_rtol)
    check.non_negative("stepsize_precision", stepsize_precision)
    check.one_of("initial_guess_strategy", initial_guess_strategy, ("keep", "one"))
    check.boolean("verbose", verbose)

    start, step, running = make_zoom_step(
        max_linesearch_steps, max_learning_rate, tol, increase_factor, slope_rtol, curv_rtol,
        approx_dec_rtol, stepsize_precision, verbose,
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
        fn_kwargs = ls.split_value_fn_kwargs(value_fn, extra_args, "scale_by_zoom_linesearch")
        guess = jnp.asarray(1.0) if initial_guess_strategy == "one" else state.learning_rate
        search = jax.lax.while_loop(
            running,
            lambda s: step(s, jax.value_and_grad(value_fn), fn_kwargs),
            start(updates, params, value, grad, guess),
        )
        new_state = ScaleByZoomLinesearchState(
            learning_rate=search.stepsize,
            value=search.value,
            grad=search.grad,
            info=ZoomLinesearchInfo(search.count, search.decrease_error, search.curvature_error),
        )
        return jtree.scale(search.stepsize, updates), jtree.cast_like(new_state, state)

    return GradientTransformationExtraArgs(_initial_state, update)


def _concrete(value: Any) -> float | None:
    """``value`` as a float (inf included), or None when it is traced or not a scalar."""
    if isinstance(value, jax.core.Tracer):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _curvature_above_slope(slope_rtol: Any, curv_rtol: Any) -> None:
    """Strong Wolfe needs c1 <= c2 (checked when both are concrete numbers).

    Equal constants still define a (possibly empty) set of acceptable steps, which
    optax searches; curv_rtol below slope_rtol contradicts the sufficient decrease.
    """
    c1, c2 = check.number("slope_rtol", slope_rtol), _concrete(curv_rtol)
    if c1 is not None and c2 is not None and not c2 >= c1:
        raise ValueError(
            f"curv_rtol must be >= slope_rtol, got curv_rtol={curv_rtol!r} and "
            f"slope_rtol={slope_rtol!r}; use e.g. slope_rtol=1e-4, curv_rtol=0.9"
        )


def _initial_state(params: Any) -> ScaleByZoomLinesearchState:
    dtype = ls.value_dtype(params)
    # Explicit dtypes: a weakly typed scalar here would retrace the second step.
    inf = jnp.array(jnp.inf, jnp.float32)
    return ScaleByZoomLinesearchState(
        learning_rate=jnp.asarray(1.0, dtype),
        value=jnp.asarray(jnp.inf, dtype),
        grad=jtree.zeros_like(params),
        info=ZoomLinesearchInfo(zero_count(), inf, inf),
    )
