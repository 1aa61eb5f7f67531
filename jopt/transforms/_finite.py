"""Skip steps whose gradients hold an inf or a NaN (:func:`apply_if_finite`)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check, tree
from jopt._flat._capability import check_flat
from jopt.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    with_extra_args_support,
)
from jopt.schedules._hyper import zero_count
from jopt.transforms._conditioning import run_inner_if


class ApplyIfFiniteState(NamedTuple):
    """State of :func:`apply_if_finite`."""

    notfinite_count: jax.Array  # int32 scalar, consecutive non-finite updates (reset when finite)
    last_finite: jax.Array  # bool scalar, whether the last updates were all finite
    total_notfinite: jax.Array  # int32 scalar, non-finite updates ever seen (never reset)
    inner_state: Any  # state of the wrapped transform (frozen on a skipped step)


def apply_if_finite(
    inner: GradientTransformation, max_consecutive_errors: int
) -> GradientTransformationExtraArgs:
    r"""Skip (return zeros, keep the inner state) when any update is inf or NaN.

    After more than ``max_consecutive_errors`` non-finite steps in a row the
    wrapper gives up and applies the update anyway:

    .. math::  c_t = [\neg\mathrm{finite}(g_t)]\,(c_{t-1} + 1), \qquad
               u_t = \begin{cases} T(g_t) & \mathrm{finite}(g_t) \lor c_t > m \\
               0 & \text{otherwise} \end{cases}

    Args:
      inner: the wrapped transform.
      max_consecutive_errors: :math:`m`, an integer >= 0, the non-finite steps in a
        row that are skipped before the update is applied.

    Example:
      >>> import jopt
      >>> tx = jopt.apply_if_finite(jopt.sgd(0.1), max_consecutive_errors=3)
    """
    _check.transformation("inner", inner)
    _check.integer(
        "max_consecutive_errors",
        max_consecutive_errors,
        minimum=0,
        fix="pass how many non-finite steps in a row to skip, e.g. 5",
    )
    inner = with_extra_args_support(inner)

    def init(params):
        check_flat("apply_if_finite", [inner], params)
        return ApplyIfFiniteState(
            notfinite_count=zero_count(),
            last_finite=jnp.array(True, jnp.bool_),
            total_notfinite=zero_count(),
            inner_state=inner.init(params),
        )

    def update(updates, state, params=None, **extra_args):
        finite = tree.all_finite(updates)
        notfinite_count = jnp.where(
            finite, zero_count(), tree.safe_increment(state.notfinite_count)
        )
        apply = jnp.logical_or(finite, notfinite_count > max_consecutive_errors)
        updates, inner_state = run_inner_if(
            apply, inner, updates, state.inner_state, params, extra_args, mask=True
        )
        total = jnp.where(finite, state.total_notfinite, tree.safe_increment(state.total_notfinite))
        return updates, ApplyIfFiniteState(notfinite_count, finite, total, inner_state)

    return GradientTransformationExtraArgs(init, update)
