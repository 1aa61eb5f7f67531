"""Monitoring transforms: record measurements of the updates in the state, pass updates through.

Use them inside a :func:`jopt.chain` to see what a chain does at one point, e.g. the
gradient norm before clipping, without changing the updates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check
from jopt.base import (
    ArrayTree,
    GradientTransformation,
    GradientTransformationExtraArgs,
    Updates,
    stateless,
    with_extra_args_support,
)
from jopt.transforms._combining import chain
from jopt.transforms._momentum import ema


class SnapshotState(NamedTuple):
    """State of :func:`snapshot`."""

    measurement: dict[str, Any]  # {measure_name: measure(updates)} of the last step


class MonitorState(NamedTuple):
    """State of :func:`monitor`."""

    measurements: dict[str, ArrayTree]  # {name: measurement} of the last step
    measure_states: tuple[Any, ...]  # states of the stateful measures, in dict order


def snapshot(measure_name: str, measure: Callable[[Updates], ArrayTree]) -> GradientTransformation:
    r"""Store ``measure(updates)`` in the state under ``measure_name``; updates pass unchanged.

    :math:`u_t = g_t`, :math:`s_t = \{\text{name}: m(g_t)\}`. ``init`` stores ``measure(params)``
    so the state has its final structure from the start.

    Args:
      measure_name: key of the measurement in the state.
      measure: callable of the updates, e.g. ``jopt.tree.l2_norm``.
    """
    if not isinstance(measure_name, str):
        raise TypeError(f"measure_name must be a str, got {measure_name!r}")
    if not callable(measure):
        raise TypeError(f"measure must be callable, got {measure!r}; pass e.g. jopt.tree.l2_norm")

    def init(params):
        return SnapshotState({measure_name: measure(params)})

    def update(updates, state, params=None):
        del state, params
        return updates, SnapshotState({measure_name: measure(updates)})

    return GradientTransformation(init, update)


def monitor(
    measures: dict[str, GradientTransformation | Callable[[Updates], ArrayTree]],
) -> GradientTransformationExtraArgs:
    """Record several, possibly stateful, measurements of the updates.

    Each value of ``measures`` is either a plain callable of the updates or a
    transform whose *output* is the measurement (such as :func:`measure_with_ema`).
    The updates pass through unchanged. Unlike optax's, the state holds every
    measurement (as zeros) from ``init`` on, so its structure never changes and a
    jitted step does not retrace.

    Args:
      measures: ``{name: callable or transform}``.
    """
    if not isinstance(measures, dict):
        raise TypeError(f"measures must be a dict of name -> measure, got {measures!r}")
    transforms = {}
    for name, measure in measures.items():
        if isinstance(measure, tuple) and hasattr(measure, "update"):
            transforms[name] = with_extra_args_support(measure)
        elif callable(measure):
            transforms[name] = with_extra_args_support(stateless(lambda u, _, m=measure: m(u)))
        else:
            raise TypeError(f"measures[{name!r}] must be callable or a transform, got {measure!r}")
    names = tuple(transforms)

    def init(params):
        states = tuple(transforms[n].init(params) for n in names)
        # Unlike optax (which starts from {}), measurements exist from init on, as zeros of
        # their eventual shape, so the state keeps one structure: no retrace, scan-able.
        shapes = jax.eval_shape(
            lambda p, s: {
                n: transforms[n].update(p, st, p)[0] for n, st in zip(names, s, strict=True)
            },
            params,
            states,
        )
        return MonitorState(jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes), states)

    def update(updates, state, params=None, **extra_args):
        measurements, new_states = {}, []
        for name, measure_state in zip(names, state.measure_states, strict=False):
            measurements[name], measure_state = transforms[name].update(
                updates, measure_state, params, **extra_args
            )
            new_states.append(measure_state)
        return updates, MonitorState(measurements, tuple(new_states))

    return GradientTransformationExtraArgs(init, update)


def measure_with_ema(
    measure: Callable[[Updates], ArrayTree],
    decay: float,
    debias: bool = True,
    accumulator_dtype: Any | None = None,
) -> GradientTransformationExtraArgs:
    r"""A measurement smoothed by an exponential moving average, for :func:`monitor`.

    .. math::  a_t = \rho\,a_{t-1} + (1-\rho)\,m(g_t), \quad \text{output } a_t / (1-\rho^t)
               \text{ when debiased}

    Args:
      measure: callable of the updates.
      decay: :math:`\rho`, in [0, 1).
      debias: divide by :math:`1-\rho^t`.
      accumulator_dtype: dtype of the average (default: the measurement's).
    """
    if not callable(measure):
        raise TypeError(f"measure must be callable, got {measure!r}")
    _check.unit_interval("decay", decay)
    averaged = ema(decay, debias, accumulator_dtype)
    # The average is shaped like the measurement, not like the params.
    averaged = averaged._replace(
        init=lambda params: ema(decay, debias, accumulator_dtype).init(measure(params))
    )
    return chain(stateless(lambda updates, _: measure(updates)), averaged)
