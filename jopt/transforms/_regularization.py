r"""Weight regularization as transforms: weight decay (L2) and proximal L1 / elastic net.

Which one to use:

- **Coupled L2** (classic "L2 regularization"): place :func:`add_decayed_weights`
  *before* the adaptive scaling, e.g. ``chain(add_decayed_weights(wd), scale_by_adam(),
  scale_by_learning_rate(lr))``. The decay :math:`\lambda w` is added to the gradient
  and then rescaled with it, exactly as the gradient of :math:`\frac{\lambda}{2}\|w\|^2`
  in the loss would be. With plain SGD this equals decoupled decay.
- **Decoupled weight decay** (AdamW): place :func:`add_decayed_weights` *after* the
  adaptive scaling and before :func:`scale_by_learning_rate`, as :func:`jopt.adamw`
  does. Every weight shrinks by :math:`\eta\lambda w` whatever its gradient history;
  usually the better choice with adaptive optimizers (Loshchilov & Hutter, 2019).
- **Proximal L1 / elastic net**: :func:`add_l1_proximal` and
  :func:`add_elastic_net_proximal` go *after* :func:`scale_by_learning_rate`, at the
  very end of the chain. They apply the exact proximal operator of
  :math:`\eta\lambda_1\|w\|_1` (soft-thresholding), so weights reach exactly zero and
  stay there: sparse models. Pass the same learning rate (or schedule) as the step.
- **Loss penalties** (``jopt.losses.l1_penalty``, ``l2_penalty``,
  ``elastic_net_penalty``): add the penalty to the loss when it must be part of the
  objective you report or differentiate, or to regularize only some outputs. An L1
  loss penalty only makes weights oscillate around zero (its subgradient never
  vanishes); use the proximal transforms for exact sparsity.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree
from jopt.base import EmptyState, GradientTransformation, Params, ScalarOrSchedule
from jopt.schedules._hyper import value_at, zero_count
from jopt.transforms._masking import masked

_NO_PARAMS = "{name} needs the params: call tx.update(updates, state, params)"


AddDecayedWeightsState = EmptyState
"""State of :func:`add_decayed_weights` with a constant weight decay (optax's name)."""


class WeightDecaySchedule(NamedTuple):
    """State of :func:`add_decayed_weights` when ``weight_decay`` is a schedule."""

    count: jax.Array  # int32 scalar, number of updates seen (saturates)


class ProximalState(NamedTuple):
    """State of :func:`add_l1_proximal` and :func:`add_elastic_net_proximal`."""

    count: jax.Array  # int32 scalar, number of updates seen (saturates)


def add_decayed_weights(
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Any | Callable[[Params], Any] | None = None,
) -> GradientTransformation:
    r"""Add the params scaled by the weight decay: :math:`u_t = g_t + \lambda_t w_t`.

    Before the adaptive scaling this is coupled L2 regularization; after it (and
    before the learning rate), decoupled weight decay. See the module docstring.

    Args:
      weight_decay: :math:`\lambda`, a number >= 0 or a schedule; default 0.
      mask: a pytree of bools like the params (or a prefix), or a function of the
        params returning one: decay only where True (e.g. skip biases and norms).

    References:
      Loshchilov & Hutter, `Decoupled Weight Decay Regularization
      <https://arxiv.org/abs/1711.05101>`_, 2019.
    """
    check.non_negative(
        "weight_decay", weight_decay, "pass a value >= 0 such as 1e-4", schedule=True
    )
    scheduled = callable(weight_decay)
    # A literal zero is a no-op; arrays may be traced (inject_hyperparams), so only
    # Python numbers are tested.
    skip = isinstance(weight_decay, (int, float)) and weight_decay == 0.0

    def init(params):
        del params
        return WeightDecaySchedule(count=zero_count()) if scheduled else EmptyState()

    def update(updates, state, params=None):
        if params is None:
            raise ValueError(_NO_PARAMS.format(name="add_decayed_weights"))
        new_state = WeightDecaySchedule(tree.safe_increment(state.count)) if scheduled else state
        if skip:
            return updates, new_state
        decay = weight_decay(state.count) if scheduled else weight_decay
        return tree.add_scale(updates, decay, params), new_state

    tx = GradientTransformation(init, update)
    return tx if mask is None else masked(tx, mask)


def _proximal(name: str, learning_rate, l1_strength, l2_strength) -> GradientTransformation:
    """Soft-threshold ``w + u`` at ``lr * l1``, then divide by ``1 + lr * l2`` (if given)."""

    def init(params):
        del params
        return ProximalState(count=zero_count())

    def update(updates, state, params=None):
        if params is None:
            raise ValueError(_NO_PARAMS.format(name=name))
        lr = value_at(learning_rate, state.count)
        threshold = lr * value_at(l1_strength, state.count)
        shrink = 1.0 if l2_strength is None else 1.0 + lr * value_at(l2_strength, state.count)

        def step(u, w):
            z = w + u
            new_w = jnp.sign(z) * jnp.maximum(jnp.abs(z) - threshold, 0.0) / shrink
            return (new_w - w).astype(u.dtype)

        return jax.tree.map(step, updates, params), ProximalState(tree.safe_increment(state.count))

    return GradientTransformation(init, update)


def add_l1_proximal(
    l1_strength: ScalarOrSchedule, learning_rate: ScalarOrSchedule
) -> GradientTransformation:
    r"""Proximal L1 step (soft-thresholding), placed after :func:`scale_by_learning_rate`.

    With :math:`z = w_t + u_t` the plain step, the new weight is the proximal point of
    :math:`\eta_t\lambda_1\|\cdot\|_1`, returned as an update relative to :math:`w_t`:

    .. math::
      w_{t+1} = \operatorname{sign}(z)\max(|z| - \eta_t\lambda_1, 0), \qquad
      u'_t = w_{t+1} - w_t

    Weights whose step lands within :math:`\eta_t\lambda_1` of zero become exactly zero.

    Args:
      l1_strength: :math:`\lambda_1`, a number >= 0 or a schedule.
      learning_rate: :math:`\eta`, the step's learning rate (number >= 0 or the same
        schedule given to :func:`scale_by_learning_rate`).

    References:
      Parikh & Boyd, `Proximal Algorithms <https://web.stanford.edu/~boyd/papers/prox_algs.html>`_,
      2014; Duchi & Singer, `Efficient Online and Batch Learning Using Forward Backward
      Splitting <https://jmlr.org/papers/v10/duchi09a.html>`_, 2009.
    """
    check.non_negative("l1_strength", l1_strength, "pass a value >= 0 such as 1e-3", schedule=True)
    check.learning_rate("learning_rate", learning_rate)
    return _proximal("add_l1_proximal", learning_rate, l1_strength, None)


def add_elastic_net_proximal(
    l1_strength: ScalarOrSchedule,
    l2_strength: ScalarOrSchedule,
    learning_rate: ScalarOrSchedule,
) -> GradientTransformation:
    r"""Proximal elastic-net step, placed after :func:`scale_by_learning_rate`.

    The proximal point of :math:`\eta_t(\lambda_1\|\cdot\|_1 + \frac{\lambda_2}{2}\|\cdot\|^2)`
    at :math:`z = w_t + u_t`, returned as an update relative to :math:`w_t`:

    .. math::
      w_{t+1} = \frac{\operatorname{sign}(z)\max(|z| - \eta_t\lambda_1, 0)}{1 + \eta_t\lambda_2},
      \qquad u'_t = w_{t+1} - w_t

    Args:
      l1_strength: :math:`\lambda_1`, a number >= 0 or a schedule.
      l2_strength: :math:`\lambda_2`, a number >= 0 or a schedule.
      learning_rate: :math:`\eta`, the step's learning rate (number >= 0 or schedule).

    References:
      Zou & Hastie, `Regularization and variable selection via the elastic net
      <https://doi.org/10.1111/j.1467-9868.2005.00503.x>`_, 2005; Parikh & Boyd,
      `Proximal Algorithms <https://web.stanford.edu/~boyd/papers/prox_algs.html>`_, 2014.
    """
    check.non_negative("l1_strength", l1_strength, "pass a value >= 0 such as 1e-3", schedule=True)
    check.non_negative("l2_strength", l2_strength, "pass a value >= 0 such as 1e-3", schedule=True)
    check.learning_rate("learning_rate", learning_rate)
    return _proximal("add_elastic_net_proximal", learning_rate, l1_strength, l2_strength)
