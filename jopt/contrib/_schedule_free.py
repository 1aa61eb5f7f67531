"""Schedule-Free optimization: interpolate between an averaged iterate and the base iterate."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree as jtree
from jopt.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    OptState,
    Params,
    ScalarOrSchedule,
    with_extra_args_support,
)
from jopt.optimizers import sgd
from jopt.schedules import warmup_constant_schedule
from jopt.transforms import add_decayed_weights, chain, scale_by_learning_rate, scale_by_rms


class ScheduleFreeState(NamedTuple):
    """State of :func:`schedule_free`."""

    b1: jax.Array  # scalar, lowest params dtype: the interpolation weight (for eval params)
    weight_sum: jax.Array  # scalar, lowest params dtype: sum of the averaging weights
    step_count: jax.Array  # int32 scalar, starts at 1 (saturates); the schedule's step
    max_lr: jax.Array  # scalar, lowest params dtype: largest learning rate seen
    base_optimizer_state: OptState  # the base optimizer's state
    z: Params  # the base optimizer's iterate, like params (state_dtype if given)


def _check_b1(b1: Any) -> None:
    # b1 divides in x = (y - (1 - b1) z) / b1, so 0 is out; 1 is plain averaging.
    check.closed_unit_interval("b1", b1, "pass a value in (0, 1] such as 0.9")
    check.greater_than("b1", b1, 0, "pass a value in (0, 1] such as 0.9")


def schedule_free_eval_params(state: OptState, params: Params) -> Params:
    r"""The parameters to evaluate (and ship) a schedule-free model with: the average :math:`x`.

    .. math::  x = \big(y - (1 - \beta_1)\, z\big) / \beta_1

    Args:
      state: a :class:`ScheduleFreeState` (the state of :func:`schedule_free` and its aliases).
      params: the parameters being trained (:math:`y`).
    """
    b1, z = getattr(state, "b1", None), getattr(state, "z", None)
    if b1 is None or z is None:
        raise ValueError(
            f"state must be a ScheduleFreeState, got {type(state).__name__}; pass the state "
            "of jopt.contrib.schedule_free (or schedule_free_sgd / schedule_free_adamw)"
        )
    return jax.tree.map(lambda y, zi: (y - (1.0 - b1) * zi) / b1, params, z)


def schedule_free(
    base_optimizer: GradientTransformation,
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    weight_lr_power: float = 2.0,
    state_dtype: Any | None = None,
) -> GradientTransformationExtraArgs:
    r"""Make ``base_optimizer`` schedule-free: no decay schedule, an online average instead.

    The base optimizer moves :math:`z`; the average :math:`x` follows it with weights
    :math:`c_t = w_t / \sum_{s\le t} w_s`, :math:`w_t = (\max_{s\le t}\gamma_s)^{p}`; the
    gradient is taken at the interpolation :math:`y`:

    .. math::

        z_{t+1} = z_t + u^{\text{base}}_t, \quad
        x_{t+1} = (1-c_{t+1})\, x_t + c_{t+1} z_{t+1}, \quad
        y_{t+1} = \beta_1 x_{t+1} + (1-\beta_1) z_{t+1}

    The params being trained are :math:`y`; evaluate with :func:`schedule_free_eval_params`.

    Args:
      base_optimizer: the optimizer that moves :math:`z`, usually SGD or Adam without
        momentum and with the same learning rate.
      learning_rate: :math:`\gamma_t`, only used for the averaging weights, >= 0 or a schedule.
      b1: :math:`\beta_1`, interpolation between :math:`x` and :math:`z`, in (0, 1].
        Default 0.9.
      weight_lr_power: :math:`p`, >= 0. Default 2.
      state_dtype: dtype of :math:`z`; None keeps the params' dtype.

    References:
      Defazio et al., `The Road Less Scheduled <https://arxiv.org/abs/2405.15682>`_, 2024.
    """
    check.transformation("base_optimizer", base_optimizer)
    check.learning_rate("learning_rate", learning_rate)
    _check_b1(b1)
    check.non_negative("weight_lr_power", weight_lr_power)
    state_dtype = check.dtype("state_dtype", state_dtype)
    base_optimizer = with_extra_args_support(base_optimizer)

    def init(params):
        low = jtree.dtype(params, "lowest")
        z = jtree.cast(params, state_dtype) if state_dtype is not None else params
        return ScheduleFreeState(
            b1=jnp.asarray(b1, low),
            weight_sum=jnp.zeros([], low),
            step_count=jnp.ones([], jnp.int32),
            max_lr=jnp.zeros([], low),
            base_optimizer_state=base_optimizer.init(params),
            # A copy, so that donating params does not invalidate z.
            z=jax.tree.map(lambda t: t.copy(), z),
        )

    def update(updates, state, params=None, **extra_args):
        check.params_given("schedule_free", params)
        lr = learning_rate
        if callable(learning_rate):
            lr = jnp.asarray(learning_rate(state.step_count), state.max_lr.dtype)
        max_lr = jnp.maximum(state.max_lr, lr)
        weight = max_lr**weight_lr_power
        total = state.weight_sum + weight
        # 0/0 on the first steps of a warmup from 0 means "no averaging yet" (c = 0),
        # but a NaN weight must stay visible.
        ck = jnp.where(
            jnp.isnan(weight) | jnp.isnan(total),
            jnp.full(weight.shape, jnp.nan),
            jnp.nan_to_num(weight / total, nan=0.0, posinf=jnp.inf),
        )
        base_updates, base_state = base_optimizer.update(
            updates, state.base_optimizer_state, params, **extra_args
        )
        z = jax.tree.map(
            lambda zi, u: jnp.asarray(zi + u).astype(jnp.asarray(zi).dtype), state.z, base_updates
        )

        def step(y, z_old, z_new):
            x_old = (y - (1.0 - b1) * z_old) / b1
            x = (1.0 - ck) * x_old + ck * z_new
            return (b1 * x + (1.0 - b1) * z_new) - y

        out = jax.tree.map(step, params, state.z, z)
        new_state = ScheduleFreeState(
            b1=state.b1,
            weight_sum=total,
            step_count=jtree.safe_increment(state.step_count),
            max_lr=max_lr,
            base_optimizer_state=base_state,
            z=z,
        )
        return out, new_state

    return GradientTransformationExtraArgs(init, update)


def _warmed_up(learning_rate: ScalarOrSchedule, warmup_steps: int | None) -> ScalarOrSchedule:
    check.learning_rate("learning_rate", learning_rate)
    if warmup_steps is None:
        return learning_rate
    check.integer("warmup_steps", warmup_steps, minimum=1)
    check.not_schedule(
        "learning_rate", learning_rate, "a warmup needs a peak value; or pass warmup_steps=None"
    )
    return warmup_constant_schedule(
        init_value=0, peak_value=learning_rate, warmup_steps=warmup_steps
    )


def schedule_free_sgd(
    learning_rate: float = 1.0,
    warmup_steps: int | None = None,
    b1: float = 0.9,
    weight_decay: float | None = None,
    weight_lr_power: float = 2.0,
    state_dtype: Any | None = None,
) -> GradientTransformationExtraArgs:
    r"""Schedule-free SGD: :func:`schedule_free` around plain SGD.

    .. math::  u^{\text{base}}_t = -\gamma_t\,(g_t + \lambda y_t)

    Args:
      learning_rate: :math:`\gamma`, the peak learning rate, >= 0. Default 1.
      warmup_steps: length of a linear warmup from 0, >= 1; None for no warmup.
      b1: interpolation between the average and the SGD iterate, in (0, 1]. Default 0.9.
      weight_decay: :math:`\lambda`, added to the gradient, >= 0; None adds nothing.
      weight_lr_power: exponent of the averaging weights, >= 0. Default 2.
      state_dtype: dtype of the SGD iterate; None keeps the params' dtype.

    References:
      Defazio et al., `The Road Less Scheduled <https://arxiv.org/abs/2405.15682>`_, 2024.
    """
    learning_rate = _warmed_up(learning_rate, warmup_steps)
    check.optional(check.non_negative, "weight_decay", weight_decay)
    optimizer = sgd(learning_rate)
    if weight_decay is not None:
        optimizer = chain(add_decayed_weights(weight_decay), optimizer)
    return schedule_free(optimizer, learning_rate, b1, weight_lr_power, state_dtype)


def schedule_free_adamw(
    learning_rate: float = 0.0025,
    warmup_steps: int | None = None,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    weight_lr_power: float = 2.0,
    state_dtype: Any | None = None,
) -> GradientTransformationExtraArgs:
    r"""Schedule-free AdamW: :func:`schedule_free` around RMSProp with decoupled weight decay.

    .. math::

        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \quad
        u^{\text{base}}_t = -\gamma_t\Big(\frac{g_t}{\sqrt{v_t/(1-\beta_2^t)} + \epsilon}
            + \lambda y_t\Big)

    (The momentum of Adam is replaced by the schedule-free interpolation.)

    Args:
      learning_rate: :math:`\gamma`, the peak learning rate, >= 0. Default 0.0025.
      warmup_steps: length of a linear warmup from 0, >= 1; None for no warmup.
      b1: interpolation between the average and the base iterate, in (0, 1]. Default 0.9.
      b2: :math:`\beta_2`, decay of the second moment, in [0, 1). Default 0.999.
      eps: :math:`\epsilon`, added to the denominator, >= 0. Default 1e-8.
      weight_decay: :math:`\lambda`, decoupled weight decay, >= 0. Default 0.
      weight_lr_power: exponent of the averaging weights, >= 0. Default 2.
      state_dtype: dtype of the base iterate; None keeps the params' dtype.

    References:
      Defazio et al., `The Road Less Scheduled <https://arxiv.org/abs/2405.15682>`_, 2024.
    """
    learning_rate = _warmed_up(learning_rate, warmup_steps)
    check.unit_interval("b2", b2, "pass a value in [0, 1) such as 0.999")
    check.non_negative("eps", eps)
    check.non_negative("weight_decay", weight_decay)
    optimizer = chain(
        scale_by_rms(decay=b2, eps=eps, eps_in_sqrt=False, bias_correction=True),
        add_decayed_weights(weight_decay),
        scale_by_learning_rate(learning_rate),
    )
    return schedule_free(optimizer, learning_rate, b1, weight_lr_power, state_dtype)
