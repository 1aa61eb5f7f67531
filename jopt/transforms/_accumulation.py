"""Gradient accumulation over several mini-steps (:class:`MultiSteps`) and its skip rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from jopt import _check, tree
from jopt._flat._capability import check_flat
from jopt.base import (
    ArrayTree,
    GradientTransformation,
    GradientTransformationExtraArgs,
    Params,
    Updates,
    with_extra_args_support,
)
from jopt.schedules._hyper import zero_count


class ShouldSkipUpdateFunction(Protocol):
    """``fn(updates, gradient_step, params) -> (should_skip, skip_state)``.

    ``should_skip`` is a boolean scalar array; ``skip_state`` is any pytree of
    arrays, stored in :attr:`MultiStepsState.skip_state` for monitoring.
    """

    def __call__(
        self, updates: Updates, gradient_step: jax.Array, params: Params | None
    ) -> tuple[jax.Array, ArrayTree]: ...


def skip_not_finite(
    updates: Updates, gradient_step: jax.Array, params: Params | None
) -> tuple[jax.Array, ArrayTree]:
    """Skip a mini-step whose updates hold an inf or a NaN.

    Returns ``(should_skip, {"should_skip", "num_not_finite"})``, where
    ``num_not_finite`` counts the non-finite entries (int32).
    """
    del gradient_step, params
    counts = jax.tree.map(lambda u: jnp.sum(~jnp.isfinite(u), dtype=jnp.int32), updates)
    num_not_finite = jnp.asarray(tree.sum(counts), jnp.int32)
    should_skip = num_not_finite > 0
    return should_skip, {"should_skip": should_skip, "num_not_finite": num_not_finite}


def skip_large_updates(
    updates: Updates, gradient_step: jax.Array, params: Params | None, max_squared_norm: Any
) -> tuple[jax.Array, ArrayTree]:
    """Skip a mini-step whose squared global norm is not below ``max_squared_norm``.

    Bind the bound with ``functools.partial(skip_large_updates, max_squared_norm=42.0)``.
    A NaN norm is skipped too. Returns ``(should_skip, {"should_skip", "norm_squared"})``.
    """
    del gradient_step, params
    norm_squared = tree.l2_norm(updates, squared=True)
    should_skip = jnp.logical_not(norm_squared < max_squared_norm)
    return should_skip, {"should_skip": should_skip, "norm_squared": norm_squared}


def _never_skip(updates, gradient_step, params):
    del updates, gradient_step, params
    return jnp.asarray(False), ()


class MultiStepsState(NamedTuple):
    """State of :class:`MultiSteps`."""

    mini_step: jax.Array  # int32 scalar, mini-steps accumulated since the last emission
    gradient_step: jax.Array  # int32 scalar, updates emitted so far (saturates)
    inner_opt_state: Any  # state of the wrapped optimizer
    acc_grads: Updates  # the one accumulator, like params in ``accumulator_dtype``
    skip_state: ArrayTree = ()  # what ``should_skip_update_fn`` reported last


class MultiSteps:
    r"""Accumulate gradients over ``k`` mini-steps, then take one step of ``opt``.

    With :math:`n` the mini-step within the current group of :math:`k`:

    .. math::  a_n = a_{n-1} + \frac{g_n - a_{n-1}}{n + 1}\ \text{(mean)}
               \quad\text{or}\quad a_n = a_{n-1} + g_n\ \text{(sum)}, \qquad
               u = \begin{cases} \mathrm{opt}(a_{k-1}) & n = k - 1 \\
               0 & \text{otherwise}\end{cases}

    The wrapped optimizer runs at every mini-step, as in optax; its state moves and its
    updates pass only on the emitting one. The numbers are optax's to the bit (running it
    under ``lax.cond`` only when emitting rounds 1 ulp apart under ``jit``, which Adam
    amplifies on parameters whose gradient is rounding noise, and was no faster on CPU).
    An accumulator that emitted a NaN is reset (optax's stays NaN). The accumulator is
    float32 by default as in optax; ``accumulator_dtype=None`` keeps each parameter's
    dtype instead, which halves it for a bfloat16 model and keeps complex gradients complex.

    Args:
      opt: the wrapped optimizer.
      every_k_schedule: mini-steps per update, an integer >= 1, or a function of
        the gradient step returning one (to grow the batch during training).
      use_grad_mean: average the accumulated gradients (True, default) or sum them.
      should_skip_update_fn: a :class:`ShouldSkipUpdateFunction`, e.g.
        :func:`skip_not_finite`; a skipped mini-step leaves the state unchanged.
      accumulator_dtype: dtype of the accumulator, default ``jnp.float32`` (optax's);
        None keeps each parameter's dtype.

    References:
      Welford, `Note on a method for calculating corrected sums of squares and
      products <https://doi.org/10.1080/00401706.1962.10490022>`_, 1962.
      Ott et al., `Scaling Neural Machine Translation
      <https://arxiv.org/abs/1806.00187>`_, 2018.

    Example:
      >>> import jopt
      >>> tx = jopt.MultiSteps(jopt.sgd(0.1), every_k_schedule=4).gradient_transformation()
    """

    def __init__(
        self,
        opt: GradientTransformation,
        every_k_schedule: int | Callable[[jax.Array], jax.Array],
        use_grad_mean: bool = True,
        should_skip_update_fn: ShouldSkipUpdateFunction | None = None,
        accumulator_dtype: Any = jnp.float32,
    ):
        _check.transformation("opt", opt)
        if callable(every_k_schedule):
            self._every_k_schedule = every_k_schedule
        else:
            _check.integer(
                "every_k_schedule",
                every_k_schedule,
                minimum=1,
                fix="pass the number of mini-steps per update, e.g. 4, or a schedule",
            )
            self._every_k_schedule = lambda step: every_k_schedule
        _check.boolean("use_grad_mean", use_grad_mean)
        if should_skip_update_fn is not None and not callable(should_skip_update_fn):
            raise TypeError(
                f"should_skip_update_fn must be a function or None, got {should_skip_update_fn!r}; "
                "pass e.g. jopt.skip_not_finite"
            )
        _check.dtype("accumulator_dtype", accumulator_dtype)
        self._opt = with_extra_args_support(opt)
        self._use_grad_mean = use_grad_mean
        self._should_skip_update_fn = should_skip_update_fn or _never_skip
        self._accumulator_dtype = accumulator_dtype

    def _leaf_dtype(self, param: Any) -> Any:
        """The accumulator's dtype for one leaf; complex leaves stay complex (optax drops the
        imaginary part)."""
        if self._accumulator_dtype is None:
            return jnp.result_type(param)
        if jnp.iscomplexobj(param):
            return jnp.promote_types(self._accumulator_dtype, jnp.result_type(param))
        return self._accumulator_dtype

    @property
    def inner_opt(self) -> GradientTransformationExtraArgs:
        """The wrapped optimizer."""
        return self._opt

    def init(self, params: Params) -> MultiStepsState:
        """The initial state: zero counters, zero accumulator, the inner optimizer's state."""
        check_flat("MultiSteps", [self._opt], params)
        acc_grads = jax.tree.map(lambda p: jnp.zeros_like(p, dtype=self._leaf_dtype(p)), params)
        gradient_step = zero_count()
        # The accumulator doubles as the zero updates the skip function is probed
        # with, so that init allocates no second tree.
        probe = acc_grads if self._accumulator_dtype is None else tree.cast_like(acc_grads, params)
        _, skip_state = self._should_skip_update_fn(probe, gradient_step, params)
        return MultiStepsState(
            mini_step=zero_count(),
            gradient_step=gradient_step,
            inner_opt_state=self._opt.init(params),
            acc_grads=acc_grads,
            skip_state=skip_state,
        )

    def update(
        self,
        updates: Updates,
        state: MultiStepsState,
        params: Params | None = None,
        **extra_args: Any,
    ) -> tuple[Updates, MultiStepsState]:
        """Accumulate ``updates``; every ``k``-th mini-step return the inner optimizer's step."""
        k = self._every_k_schedule(state.gradient_step)
        skip, skip_state = self._should_skip_update_fn(updates, state.gradient_step, params)
        skip = jnp.asarray(skip)
        if skip.shape != () or skip.dtype != jnp.bool_:
            raise ValueError(
                "should_skip_update_fn must return a boolean scalar as its first output, got "
                f"an array of dtype {skip.dtype} and shape {skip.shape}; return e.g. "
                "jnp.any(~jnp.isfinite(x))"
            )
        if jax.tree.structure(skip_state) == jax.tree.structure(state.skip_state):
            # Gradients of another dtype than the params must not change the state's type.
            skip_state = tree.cast_like(skip_state, state.skip_state)

        def accumulate(updates, state, params):
            return self._accumulate(updates, state, params, k, skip_state, extra_args)

        def keep(updates, state, params):
            shapes = jax.eval_shape(accumulate, updates, state, params)[0]
            zeros = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)
            return zeros, state._replace(skip_state=skip_state)

        # As in optax, a skipped mini-step keeps the state, and both branches run under
        # lax.cond, eagerly too (where its branches are compiled): optax's numbers exactly.
        return jax.lax.cond(skip, keep, accumulate, updates, state, params)

    def _accumulate(self, updates, state, params, k, skip_state, extra_args):
        """One mini-step that is not skipped: add to the mean (or sum); emit on the k-th."""
        n = state.mini_step
        if self._use_grad_mean:
            acc = jax.tree.map(lambda g, a: a + (g - a) / (n + 1), updates, state.acc_grads)
        else:
            acc = jax.tree.map(lambda g, a: g + a, updates, state.acc_grads)
        emit = n == k - 1
        new_updates, inner_state = self._run_and_mask(
            emit, tree.cast_like(acc, updates), state.inner_opt_state, params, extra_args
        )
        # Reset with a select, not optax's (1 - emit) * acc: an accumulator that emitted a
        # NaN starts afresh (optax's stays NaN for ever).
        acc_grads = jax.tree.map(
            lambda new, old: jnp.where(emit, 0, new).astype(old.dtype), acc, state.acc_grads
        )
        gradient_step = jnp.where(
            emit, tree.safe_increment(state.gradient_step), state.gradient_step
        )
        mini_step = (tree.safe_increment(n) % k).astype(jnp.int32)
        new_state = MultiStepsState(mini_step, gradient_step, inner_state, acc_grads, skip_state)
        return new_updates, new_state

    def _run_and_mask(self, emit, acc, inner_state, params, extra_args):
        """optax's form: the inner optimizer runs at every mini-step; its state is kept and
        its updates are let through only on the emitting one. The updates are multiplied by
        ``emit``, as optax does: a select gives the same values but another fusion, which
        newer XLA (jax 0.12) compiles 1 ulp off optax's numbers."""
        new_updates, new_state = self._opt.update(acc, inner_state, params, **extra_args)
        kept = jax.tree.map(
            lambda old, new: jnp.where(emit, new, old).astype(old.dtype), inner_state, new_state
        )
        return jax.tree.map(lambda u: emit * u, new_updates), kept

    def has_updated(self, state: MultiStepsState | ArrayTree) -> jax.Array:
        """Whether the last call to ``update`` emitted a step of the inner optimizer."""
        return jnp.logical_and(state.mini_step == 0, state.gradient_step > 0)

    def gradient_transformation(self) -> GradientTransformationExtraArgs:
        """This wrapper as a plain ``(init, update)`` pair, for ``chain`` and friends."""
        return GradientTransformationExtraArgs(init=self.init, update=self.update)
