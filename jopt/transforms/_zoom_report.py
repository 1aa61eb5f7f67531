"""What ``scale_by_zoom_linesearch(verbose=True)`` prints: optax's diagnosis, word for word.

optax prints an ``INFO`` block (the value and slope at the start, the step reached and both
errors) when the search stops at the largest step without a bracket, and when it fails,
followed by the reason and advice. jopt prints the same lines, with its own name in the
heading, from the same places of the search, so a user reads the same diagnosis.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jopt.transforms._linesearch import cond_print

_HEADING = (
    "INFO: jopt.scale_by_zoom_linesearch:\n"
    "Value at current params: {value_init}\n"
    "Slope along update direction: {slope_init}\n"
    "Stepsize reached: {stepsize}\n"
    "Decrease Error: {decrease_error}\n"
    "Curvature Error: {curvature_error}"
)
INTERVAL_NOT_FOUND = (
    "No interval satisfying curvature condition. "
    "Consider increasing maximal possible stepsize of the linesearch."
)
INTERVAL_TOO_SMALL = "Length of searched interval has been reduced below threshold."
CURVATURE_NOT_SATISFIED = (
    "Returning stepsize with sufficient decrease but curvature condition not satisfied."
)
NO_STEPSIZE_FOUND = "Linesearch failed, no stepsize satisfying sufficient decrease found."
NOT_A_DESCENT_DIRECTION = (
    "The linesearch failed because the provided direction is not a descent direction. "
)


def _numbers(search: Any, stepsize: Any, decrease_error: Any, curvature_error: Any) -> dict:
    return dict(
        value_init=search.value_init,
        slope_init=search.slope_init,
        stepsize=stepsize,
        decrease_error=decrease_error,
        curvature_error=curvature_error,
    )


def report_no_bracket(condition: Any, search: Any, stepsize: Any, dec: Any, curv: Any) -> None:
    """At the largest step with no bracket (the search stops there, curvature unmet)."""
    message = _HEADING + INTERVAL_NOT_FOUND + "\n" + CURVATURE_NOT_SATISFIED
    cond_print(condition, message, **_numbers(search, stepsize, dec, curv))


def report_failure(search: Any, interval_threshold: Any) -> None:
    """The search failed (budget spent or bracket too small): what it reached, and why."""
    numbers = _numbers(search, search.stepsize, search.decrease_error, search.curvature_error)
    jax.debug.print(_HEADING, **numbers, ordered=True)
    interval_length = jnp.abs(search.low - search.high)
    cond_print(
        interval_length <= interval_threshold,
        INTERVAL_TOO_SMALL + " Interval length: {interval_length}.",
        interval_length=interval_length,
    )
    jax.lax.cond(
        search.safe_stepsize > 0.0,
        lambda s: jax.debug.print(
            CURVATURE_NOT_SATISFIED + " Stepsize ensuring sufficient decrease: {safe_stepsize}.",
            safe_stepsize=s.safe_stepsize,
        ),
        _diagnose,
        search,
    )


def _diagnose(search: Any) -> None:
    """Why no step gave a sufficient decrease, and what to try."""
    jax.debug.print(NO_STEPSIZE_FOUND)
    slope_init, stepsize = search.slope_init, search.stepsize
    descent = slope_init < 0.0
    cond_print(
        ~descent,
        NOT_A_DESCENT_DIRECTION + "The slope (={slope_init}) at stepsize=0 should be negative",
        slope_init=slope_init,
    )
    cond_print(descent, "Consider augmenting the maximal number of linesearch iterations.")
    eps = jnp.finfo(jnp.float32).eps
    cond_print(
        (stepsize < eps) & descent,
        "Computed stepsize (={stepsize}) is below machine precision (={eps}), consider "
        "passing to higher precision like x64, using "
        "jax.config.update('jax_enable_x64', True).",
        stepsize=stepsize,
        eps=eps,
    )
    abs_slope_init = jnp.abs(slope_init)
    cond_print(
        (abs_slope_init > 1e16) & descent,
        "Very large absolute slope at stepsize=0. (|slope|={abs_slope_init}). The objective "
        "is badly conditioned. Consider reparameterizing objective (e.g., normalizing "
        "parameters) or finding a better guess for the initial parameters for the solver.",
        abs_slope_init=abs_slope_init,
    )
    outside = jnp.isinf(search.decrease_error)
    cond_print(
        outside,
        "Cannot even make a step without getting Inf or Nan. The linesearch won't make a "
        "step and the optimizer is stuck.",
    )
    cond_print(
        ~outside,
        "Making an unsafe step, not decreasing enough the objective. Convergence of the "
        "solver is compromised as it does not reduce values.",
    )
