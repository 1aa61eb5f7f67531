"""The zoom line search's inner iteration (Nocedal & Wright, Algorithms 3.5 and 3.6).

One iteration either widens the bracket (interval search) or shrinks it by
cubic, quadratic or bisection interpolation (zoom). :func:`make_zoom_step` returns
``start``, ``step`` and ``running`` for a ``jax.lax.while_loop``; the transform
around it is :func:`jopt.scale_by_zoom_linesearch`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jopt import tree as jtree
from jopt.base import Params, Updates
from jopt.transforms import _linesearch as ls
from jopt.transforms._zoom_report import report_failure, report_no_bracket


class ZoomSearch(NamedTuple):
    """Carry of one zoom line search (all scalars unless noted)."""

    count: jax.Array  # int32, iterations done
    params: Params  # like params: the point searched from
    updates: Updates  # like params: the direction
    stepsize_guess: jax.Array  # first trial step
    stepsize: jax.Array  # last trial step, its value, gradient (like params) and slope
    value: jax.Array
    grad: Updates
    slope: jax.Array
    value_init: jax.Array  # value and slope at step 0
    slope_init: jax.Array
    decrease_error: jax.Array  # >= 0, 0 when the criterion holds; inf outside the domain
    curvature_error: jax.Array
    error: jax.Array  # the larger of the two
    interval_found: jax.Array  # bool: zooming (True) or still widening (False)
    done: jax.Array  # bool: both criteria hold
    failed: jax.Array  # bool: budget spent or bracket too small
    # The bracket: `low` has the lower value, not necessarily the smaller step.
    low: jax.Array
    value_low: jax.Array
    slope_low: jax.Array
    high: jax.Array
    value_high: jax.Array
    slope_high: jax.Array
    cubic_ref: jax.Array  # third point of the cubic interpolation
    value_cubic_ref: jax.Array
    # Best step with a sufficient decrease seen so far: the fallback on failure.
    safe_stepsize: jax.Array
    safe_value: jax.Array
    safe_grad: Updates


def _cubic_minimizer(a, fa, fpa, b, fb, c, fc):
    """Critical point of the cubic through (a, fa), (b, fb), (c, fc) with slope fpa at a.

    NaN when there is none; the caller then falls back to another rule.
    """
    db, dc = b - a, c - a
    denom = (db * dc) ** 2 * (db - dc)
    matrix = jnp.array([[dc**2, -(db**2)], [-(dc**3), db**3]])
    rhs = jnp.array([fb - fa - fpa * db, fc - fa - fpa * dc])
    cubic, quad = jnp.dot(matrix, rhs, precision=jax.lax.Precision.HIGHEST) / denom
    return a + (-quad + jnp.sqrt(quad * quad - 3.0 * cubic * fpa)) / (3.0 * cubic)


def _quadratic_minimizer(a, fa, fpa, b, fb):
    """Critical point of the parabola through (a, fa), (b, fb) with slope fpa at a."""
    db = b - a
    curvature = (fb - fa - fpa * db) / (db**2)
    return a - fpa / (2.0 * curvature)


class _Rules(NamedTuple):
    """The search's constants (Python numbers, or scalars traced by inject_hyperparams)."""

    max_linesearch_steps: Any
    max_stepsize: Any
    tol: Any
    increase_factor: Any
    slope_rtol: Any
    curv_rtol: Any
    approx_dec_rtol: Any
    interval_threshold: Any
    verbose: bool  # print optax's diagnosis (see _zoom_report)


def _on_line(value_and_grad_fn, params, stepsize, updates, fn_kwargs):
    """Value, gradient and slope along ``updates`` at ``params + stepsize * updates``."""
    value, grad = value_and_grad_fn(jtree.add_scale(params, stepsize, updates), **fn_kwargs)
    return value, grad, jnp.real(jtree.vdot(ls.conj(grad), updates))


def _decrease_error(rules, stepsize, value, slope, value_init, slope_init):
    # Armijo (N&W 3.7a) ...
    error = value - value_init - rules.slope_rtol * stepsize * slope_init
    if rules.approx_dec_rtol is not None:
        # ... or, near a minimum where Armijo cannot resolve the decrease,
        # Hager & Zhang's approximate criterion (their eqs. 23, 26-27).
        approx = slope - (2 * rules.slope_rtol - 1.0) * slope_init
        near = value - value_init - rules.approx_dec_rtol * jnp.abs(value_init)
        error = jnp.minimum(jnp.maximum(approx, near), error)
    error = jnp.maximum(error, 0.0)
    return jnp.where(jnp.isnan(error), jnp.inf, error)


def _curvature_error(rules, slope, slope_init):
    # Strong Wolfe curvature condition (N&W 3.7b).
    error = jnp.maximum(jnp.abs(slope) - rules.curv_rtol * jnp.abs(slope_init), 0.0)
    return jnp.where(jnp.isnan(error), jnp.inf, error)


def _errors(rules, search, stepsize, value, slope):
    """Decrease error, curvature error and the larger of the two at a trial step."""
    dec = _decrease_error(rules, stepsize, value, slope, search.value_init, search.slope_init)
    curv = _curvature_error(rules, slope, search.slope_init)
    return dec, curv, jnp.maximum(dec, curv)


def _fall_back_to_safe_step(search):
    use_safe = (search.safe_stepsize > 0.0) | jnp.isinf(search.decrease_error)
    stepsize, value, grad = jtree.where(
        use_safe,
        [search.safe_stepsize, search.safe_value, search.safe_grad],
        [search.stepsize, search.value, search.grad],
    )
    new = search._replace(stepsize=stepsize, value=value, grad=grad)
    return jtree.cast_like(new, search)


def _widen(rules, search, value_and_grad_fn, fn_kwargs):
    """Interval search (Algorithm 3.5): grow the step until a bracket is found."""
    first = search.count == 0
    stepsize = jnp.where(first, search.stepsize_guess, rules.increase_factor * search.stepsize)
    if rules.max_stepsize is not None:
        at_max = stepsize >= rules.max_stepsize
        stepsize = jnp.minimum(stepsize, rules.max_stepsize)
    else:
        at_max = jnp.asarray(False)
    value, grad, slope = _on_line(
        value_and_grad_fn, search.params, stepsize, search.updates, fn_kwargs
    )
    dec, curv, error = _errors(rules, search, stepsize, value, slope)
    safe_stepsize, safe_value, safe_grad = jtree.where(
        dec <= rules.tol,
        [stepsize, value, grad],
        [search.safe_stepsize, search.safe_value, search.safe_grad],
    )
    # Algorithm 3.5: the new point closes the bracket from above ...
    high_is_new = (dec > 0.0) | ((value >= search.value) & ~first)
    # ... or, going uphill, from below (the previous point becomes `high`).
    low_is_new = (slope >= 0.0) & ~high_is_new
    previous = [search.stepsize, search.value, search.slope]
    new = [stepsize, value, slope]
    low, value_low, slope_low, high, value_high, slope_high = jtree.where(
        low_is_new, new + previous, previous + new
    )
    interval_found = high_is_new | low_is_new | (error <= rules.tol)
    # At the largest step with no bracket, no larger step can be tried: stop there.
    done = (error <= rules.tol) | (at_max & ~interval_found)
    if rules.verbose:
        report_no_bracket(at_max & ~interval_found, search, stepsize, dec, curv)
    failed = (search.count + 1 >= rules.max_linesearch_steps) & ~done
    new_search = ZoomSearch(
        jtree.safe_increment(search.count), search.params, search.updates,
        search.stepsize_guess, stepsize, value, grad, slope, search.value_init,
        search.slope_init, dec, curv, error, jnp.asarray(interval_found),
        jnp.asarray(done), jnp.asarray(failed), low, value_low, slope_low, high, value_high,
        slope_high, low, value_low, safe_stepsize, safe_value, safe_grad,
    )  # fmt: skip
    return jtree.cast_like(new_search, search)


def _zoom_point(search):
    """The next trial inside the bracket: cubic, else quadratic, else bisection."""
    low, high = search.low, search.high
    width = jnp.abs(high - low)
    left, right = jnp.minimum(high, low), jnp.maximum(high, low)
    # Interpolants too close to the bracket's ends are rejected (scipy's margins).
    cubic = _cubic_minimizer(
        low, search.value_low, search.slope_low, high, search.value_high,
        search.cubic_ref, search.value_cubic_ref,
    )  # fmt: skip
    use_cubic = (cubic > left + 0.2 * width) & (cubic < right - 0.2 * width)
    quad = _quadratic_minimizer(low, search.value_low, search.slope_low, high, search.value_high)
    use_quad = ~use_cubic & (quad > left + 0.1 * width) & (quad < right - 0.1 * width)
    middle = jnp.where(use_cubic, cubic, search.cubic_ref)
    middle = jnp.where(use_quad, quad, middle)
    return jnp.where(~use_cubic & ~use_quad, (low + high) / 2.0, middle)


def _shrink_bracket(search, middle, value, slope, dec):
    """Algorithm 3.6: the new (low, high) ends around ``middle``, and the cubic's third point."""
    low, high = search.low, search.high
    high_is_middle = (dec > 0.0) | (value >= search.value_low)
    high_is_low = (slope * (high - low) >= 0.0) & ~high_is_middle
    low_is_middle = ~high_is_middle
    old_high = [high, search.value_high, search.slope_high]
    old_low = [low, search.value_low, search.slope_low]
    mid = [middle, value, slope]
    new_high = jtree.where(high_is_low, old_low, jtree.where(high_is_middle, mid, old_high))
    new_low = jtree.where(low_is_middle, mid, old_low)
    # The point that left the bracket becomes the cubic's third point.
    cubic_ref = jtree.where(
        high_is_middle | high_is_low, [high, search.value_high], [low, search.value_low]
    )
    return new_low, new_high, cubic_ref


def _zoom(rules, search, value_and_grad_fn, fn_kwargs):
    """Zoom (Algorithm 3.6): evaluate a point inside the bracket and shrink the bracket."""
    middle = _zoom_point(search)
    value, grad, slope = _on_line(
        value_and_grad_fn, search.params, middle, search.updates, fn_kwargs
    )
    dec, curv, error = _errors(rules, search, middle, value, slope)
    # Keep the sufficient-decrease point with the smallest value as the fallback.
    safe_stepsize, safe_value, safe_grad = jtree.where(
        (dec <= rules.tol) & (value < search.safe_value),
        [middle, value, grad],
        [search.safe_stepsize, search.safe_value, search.safe_grad],
    )
    done = error <= rules.tol
    new_low, new_high, (cubic_ref, value_cubic_ref) = _shrink_bracket(
        search, middle, value, slope, dec
    )
    # A bracket below the precision ends the search only once a point with a
    # sufficient decrease exists: very steep objectives need tiny steps.
    out_of_budget = jnp.asarray(search.count + 1 >= rules.max_linesearch_steps)
    too_small = (jnp.abs(search.high - search.low) <= rules.interval_threshold) & (
        safe_stepsize > 0.0
    )
    failed = (out_of_budget | too_small) & ~done
    new_search = ZoomSearch(
        jtree.safe_increment(search.count), search.params, search.updates,
        search.stepsize_guess, middle, value, grad, slope, search.value_init,
        search.slope_init, dec, curv, error, search.interval_found, done, failed,
        *new_low, *new_high, cubic_ref, value_cubic_ref, safe_stepsize, safe_value, safe_grad,
    )  # fmt: skip
    return jtree.cast_like(new_search, search)


def _start(updates, params, value, grad, stepsize_guess):
    """The carry before the first trial: step 0, no bracket, no safe step."""
    dtype = ls.value_dtype(params)
    slope = jnp.real(jtree.vdot(updates, grad))
    zero, inf = jnp.asarray(0.0), jnp.asarray(jnp.inf)
    return ZoomSearch(
        jnp.asarray(0), params, updates, stepsize_guess, jnp.asarray(0.0, dtype),
        jnp.array(value, dtype), grad, slope, value, slope, inf, inf, inf,
        jnp.asarray(False), jnp.asarray(False), jnp.asarray(False), zero, value, slope,
        zero, value, slope, zero, value, zero, value, grad,
    )  # fmt: skip


def _running(search):
    return ~(search.done | search.failed)


def make_zoom_step(
    max_linesearch_steps: Any,
    max_stepsize: Any,
    tol: Any,
    increase_factor: Any,
    slope_rtol: Any,
    curv_rtol: Any,
    approx_dec_rtol: Any,
    interval_threshold: Any,
    verbose: bool = False,
) -> tuple[Callable[..., ZoomSearch], Callable[..., ZoomSearch], Callable[[ZoomSearch], Any]]:
    """Build ``start(updates, params, value, grad, stepsize_guess)``, ``step(search,
    value_and_grad_fn, fn_kwargs)`` and ``running(search)``."""
    rules = _Rules(
        max_linesearch_steps, max_stepsize, tol, increase_factor, slope_rtol, curv_rtol,
        approx_dec_rtol, interval_threshold, verbose,
    )  # fmt: skip

    def fail(search):
        if verbose:
            report_failure(search, interval_threshold)
        return _fall_back_to_safe_step(search)

    def step(search, value_and_grad_fn, fn_kwargs):
        new = jax.lax.cond(
            search.interval_found,
            lambda s: _zoom(rules, s, value_and_grad_fn, fn_kwargs),
            lambda s: _widen(rules, s, value_and_grad_fn, fn_kwargs),
            search,
        )
        new = jax.lax.cond(new.failed, fail, lambda s: s, new)
        return jtree.cast_like(new, search)

    return _start, step, _running
