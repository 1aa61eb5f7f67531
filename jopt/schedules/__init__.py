"""Schedules: pure functions ``step -> value``, and their combinators (``jopt.schedules``).

Every schedule takes a Python number or a (traced) integer count, works under ``jax.jit``
and ``jax.vmap`` (evaluate it on a vector of steps to plot it), and gives optax's values.
Hyperparameter injection (:func:`inject_hyperparams`, which evaluates schedules inside an
optimizer's state) lives here too, as in ``optax.schedules``: it needs only ``jopt.base``
and ``jopt.tree``, so the transforms and optimizers above can use it.
"""

# The type, as optax.schedules.Schedule; listed in jopt's top-level __all__ through jopt.base.
from jopt.base import Schedule as Schedule
from jopt.schedules._basic import (
    constant_schedule,
    linear_schedule,
    piecewise_constant_schedule,
    polynomial_schedule,
)
from jopt.schedules._cycles import (
    cosine_onecycle_schedule,
    linear_onecycle_schedule,
    sgdr_schedule,
)
from jopt.schedules._decay import cosine_decay_schedule, exponential_decay
from jopt.schedules._injection import (
    InjectHyperparamsState,
    InjectStatefulHyperparamsState,
    StatefulSchedule,
    WrappedSchedule,
    inject_hyperparams,
    inject_stateful_hyperparams,
)
from jopt.schedules._interpolate import piecewise_interpolate_schedule
from jopt.schedules._join import join_schedules
from jopt.schedules._warmup import (
    warmup_constant_schedule,
    warmup_cosine_decay_schedule,
    warmup_exponential_decay_schedule,
)

__all__ = [
    "InjectHyperparamsState",
    "InjectStatefulHyperparamsState",
    "StatefulSchedule",
    "WrappedSchedule",
    "constant_schedule",
    "cosine_decay_schedule",
    "cosine_onecycle_schedule",
    "exponential_decay",
    "inject_hyperparams",
    "inject_stateful_hyperparams",
    "join_schedules",
    "linear_onecycle_schedule",
    "linear_schedule",
    "piecewise_constant_schedule",
    "piecewise_interpolate_schedule",
    "polynomial_schedule",
    "sgdr_schedule",
    "warmup_constant_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
]
