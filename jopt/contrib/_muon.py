"""Muon: momentum orthogonalised by Newton-Schulz for matrices, AdamW for everything else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jopt import _check as check
from jopt import tree as jtree
from jopt._flat._capability import refuse_flat, refusing_empty_init
from jopt.base import GradientTransformation, ScalarOrSchedule, Updates
from jopt.contrib._newton_schulz import (
    PRECONDITIONINGS,
    MuonDimensionNumbers,
    Preconditioning,
    fans,
    is_dimension_numbers,
    orthogonalize_via_newton_schulz,
)
from jopt.optimizers import adamw
from jopt.schedules._hyper import zero_count
from jopt.transforms import (
    MaskedNode,
    add_decayed_weights,
    chain,
    partition,
    scale_by_learning_rate,
)

_DEFAULT_NS_COEFFS = (3.4445, -4.7750, 2.0315)
# One triple per step (Dion's schedule): faster convergence to orthogonality.
_NS_COEFFS_PRESETS = {
    "standard": _DEFAULT_NS_COEFFS,
    "dion": (
        (4.0848, -6.8946, 2.9270),
        (3.9505, -6.3029, 2.6377),
        (3.7418, -5.5913, 2.3037),
        (2.8769, -3.1427, 1.2046),
        (2.8366, -3.0525, 1.2012),
    ),
}

WeightDimNumOrFn = MuonDimensionNumbers | Any | Callable[[Any], Any]


class MuonState(NamedTuple):
    """State of :func:`scale_by_muon`."""

    count: jax.Array  # int32 scalar, steps seen (saturates)
    mu: Updates  # momentum, like params (mu_dtype)
    ns_coeffs: jax.Array  # (3,) or (n, 3) float: the Newton-Schulz coefficients


def _check_ns_coeffs(ns_coeffs: Any, ns_steps: Any) -> None:
    try:
        shape = np.shape(ns_coeffs)
    except ValueError:  # ragged nested tuples
        shape = ("ragged",)
    if len(shape) not in (1, 2) or shape[-1] != 3:
        raise ValueError(
            f"ns_coeffs must have shape (3,) or (n, 3), got shape {shape}; pass (a, b, c) "
            "or one triple per step, or the name 'standard' or 'dion' (muon only)"
        )
    n_steps = check.number("ns_steps", ns_steps)
    if len(shape) == 2 and n_steps is not None and shape[0] > n_steps:
        raise ValueError(
            f"ns_steps must be >= the number of coefficient triples ({shape[0]}), got "
            f"{ns_steps}; pass ns_steps={shape[0]} or fewer triples"
        )


def _resolve(dim_nums: WeightDimNumOrFn | None, updates: Any) -> Any:
    return dim_nums(updates) if callable(dim_nums) else dim_nums


def _map_dims(f, updates, dim_nums):
    """Apply ``f(leaf, dims)`` leafwise; ``dim_nums`` None means every leaf is a matrix."""
    if dim_nums is None:
        return jax.tree.map(lambda x: f(x, None), updates)
    return jax.tree.map(f, updates, dim_nums, is_leaf=is_dimension_numbers)


def scale_by_muon(
    ns_coeffs: tuple = _DEFAULT_NS_COEFFS,
    ns_steps: int = 5,
    beta: float = 0.95,
    eps: float = 1e-8,
    mu_dtype: Any | None = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: Preconditioning = "frobenius",
    weight_dimension_numbers: WeightDimNumOrFn | None = None,
) -> GradientTransformation:
    r"""Rescale updates by Muon: bias-corrected momentum, orthogonalised by Newton-Schulz.

    .. math::

        m_t = \beta m_{t-1} + (1-\beta) g_t, \quad
        \hat m_t = \frac{m_t}{1-\beta^t} \;\text{or (Nesterov)}\;
            \beta\frac{m_t}{1-\beta^{t+1}} + (1-\beta)\frac{g_t}{1-\beta^t}, \quad
        u_t = \operatorname{NS}(\hat m_t) \approx UV^\top

    With ``adaptive`` the update is :math:`\langle \hat m_t, u_t\rangle\, u_t`.
    Every leaf must be a matrix, or be described by ``weight_dimension_numbers``.

    Args:
      ns_coeffs: Newton-Schulz coefficients :math:`(a, b, c)`, or one triple per step.
      ns_steps: number of Newton-Schulz iterations, >= 0 (>= the number of triples). Default 5.
      beta: :math:`\beta`, momentum decay, in [0, 1). Default 0.95.
      eps: added to the norm before the iterations, >= 0. Default 1e-8.
      mu_dtype: dtype of the momentum; None keeps the gradients' dtype.
      nesterov: use Nesterov momentum. Default True.
      adaptive: scale by :math:`\langle \hat m_t, u_t\rangle` (dual-norm scaling). Default False.
      preconditioning: one of ``"frobenius"``, ``"spectral"``, ``"aol"``, ``"schatten"``.
      weight_dimension_numbers: a :class:`MuonDimensionNumbers`, a tree of them (prefix of
        the params), or a function of the updates returning one; None for matrices.

    References:
      Jordan et al., `Muon: An optimizer for hidden layers in neural networks
      <https://kellerjordan.github.io/posts/muon/>`_, 2024;
      Bernstein & Newhouse, `Old Optimizer, New Norm: An Anthology
      <https://arxiv.org/abs/2409.20325>`_, 2024.
    """
    _check_ns_coeffs(ns_coeffs, ns_steps)
    check.finite("ns_coeffs", ns_coeffs)
    check.whole_number("ns_steps", ns_steps, 0, "pass a number of iterations such as 5")
    check.unit_interval("beta", beta, "pass a value in [0, 1) such as 0.95")
    check.non_negative("eps", eps)
    mu_dtype = check.dtype("mu_dtype", mu_dtype)
    check.boolean("nesterov", nesterov)
    check.boolean("adaptive", adaptive)
    check.one_of("preconditioning", preconditioning, PRECONDITIONINGS)
    check.dimension_numbers(
        "weight_dimension_numbers", weight_dimension_numbers, MuonDimensionNumbers
    )

    def init(params):
        refuse_flat("scale_by_muon", params)
        coeffs = jnp.asarray(ns_coeffs)
        if coeffs.ndim == 2:
            coeffs = coeffs[-ns_steps:]
        return MuonState(count=zero_count(), mu=jtree.zeros_like(params, dtype=mu_dtype),
                         ns_coeffs=coeffs)  # fmt: skip

    def update(updates, state, params=None):
        del params
        dim_nums = _resolve(weight_dimension_numbers, updates)
        mu = jtree.update_moment(updates, state.mu, beta, 1)
        count = jtree.safe_increment(state.count)
        if nesterov:
            mu_hat = jax.tree.map(
                lambda m, g: beta * m + (1 - beta) * g,
                jtree.bias_correction(mu, beta, jtree.safe_increment(count)),
                jtree.bias_correction(updates, beta, count),
            )
        else:
            mu_hat = jtree.bias_correction(mu, beta, count)
        out = _map_dims(
            lambda x, d: orthogonalize_via_newton_schulz(
                x, state.ns_coeffs, ns_steps, preconditioning, eps, d
            ),
            mu_hat, dim_nums,
        )  # fmt: skip
        if adaptive:
            out = jax.tree.map(lambda m, o: jnp.sum(m.conj() * o) * o, mu_hat, out)
        return out, MuonState(count=count, mu=jtree.cast(mu, mu_dtype), ns_coeffs=state.ns_coeffs)

    return GradientTransformation(init, update)


def scale_by_shape(
    weight_dimension_numbers: WeightDimNumOrFn | None = None,
    consistent_rms: float | None = None,
) -> GradientTransformation:
    r"""Scale each matrix's update for its shape.

    .. math::  u \leftarrow \sqrt{\max(1, d_\text{out}/d_\text{in})}\; u \quad\text{or}\quad
               u \leftarrow r\,\sqrt{\max(d_\text{in}, d_\text{out})}\; u

    the second with ``consistent_rms`` :math:`= r` (an RMS matching AdamW's).

    Args:
      weight_dimension_numbers: as in :func:`scale_by_muon`.
      consistent_rms: :math:`r`, >= 0, or None for the width-transfer scaling.
    """
    check.optional(check.non_negative, "consistent_rms", consistent_rms)

    def scaled(u, dims):
        fan_in, fan_out = fans(u, dims or MuonDimensionNumbers())
        if consistent_rms is None:
            return jnp.sqrt(jnp.maximum(1, fan_out / fan_in)) * u
        return jnp.sqrt(jnp.maximum(fan_in, fan_out)) * consistent_rms * u

    def update(updates, state, params=None):
        del params
        return _map_dims(scaled, updates, _resolve(weight_dimension_numbers, updates)), state

    return GradientTransformation(refusing_empty_init("scale_by_shape"), update)


def muon(
    learning_rate: ScalarOrSchedule,
    ns_coeffs: tuple | str = _DEFAULT_NS_COEFFS,
    ns_steps: int = 5,
    beta: float = 0.95,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    weight_decay_mask: Any | Callable[[Any], Any] | None = None,
    mu_dtype: Any | None = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: Preconditioning = "frobenius",
    adam_b1: float = 0.9,
    adam_b2: float = 0.999,
    adam_eps_root: float = 0.0,
    adam_weight_decay: float = 0.0,
    adam_learning_rate: ScalarOrSchedule | None = None,
    muon_weight_dimension_numbers: WeightDimNumOrFn | None = None,
    consistent_rms: float | None = None,
) -> GradientTransformation:
    r"""Muon for the matrices (:func:`scale_by_muon`), AdamW for every other parameter.

    .. math::  x_{t+1} = x_t - \alpha_t\big(s\, u^{\text{Muon}}_t + \lambda x_t\big)

    with :math:`s` from :func:`scale_by_shape`. Without ``muon_weight_dimension_numbers``
    the 2-D parameters get Muon; with it, the leaves it describes (None marks AdamW ones).

    Args:
      learning_rate: :math:`\alpha_t`, a number >= 0 or a schedule.
      ns_coeffs: Newton-Schulz coefficients, one triple or one per step, or a preset name
        ``"standard"`` or ``"dion"``.
      ns_steps: number of Newton-Schulz iterations, >= 0. Default 5.
      beta: Muon's momentum decay, in [0, 1). Default 0.95.
      eps: Muon's norm epsilon and AdamW's eps, >= 0. Default 1e-8.
      weight_decay: :math:`\lambda` for the Muon group, >= 0. Default 0.
      weight_decay_mask: tree of booleans (or a function of the params) selecting Muon
        leaves to decay.
      mu_dtype: dtype of both groups' first moments; None keeps the gradients' dtype.
      nesterov: Nesterov momentum in both groups. Default True.
      adaptive: dual-norm scaling of Muon's update. Default False.
      preconditioning: ``"frobenius"``, ``"spectral"``, ``"aol"`` or ``"schatten"``.
      adam_b1: AdamW's :math:`\beta_1`, in [0, 1). Default 0.9.
      adam_b2: AdamW's :math:`\beta_2`, in [0, 1). Default 0.999.
      adam_eps_root: AdamW's eps inside the root, >= 0. Default 0.
      adam_weight_decay: AdamW's weight decay, >= 0. Default 0.
      adam_learning_rate: AdamW's learning rate; None uses ``learning_rate``.
      muon_weight_dimension_numbers: which leaves get Muon, and their axes (see
        :class:`MuonDimensionNumbers`); None gives Muon to the 2-D leaves.
      consistent_rms: if set, scale Muon's updates to this RMS (see :func:`scale_by_shape`).

    References:
      Jordan et al., `Muon: An optimizer for hidden layers in neural networks
      <https://kellerjordan.github.io/posts/muon/>`_, 2024.
    """
    check.learning_rate("learning_rate", learning_rate)
    if isinstance(ns_coeffs, str):
        check.one_of("ns_coeffs", ns_coeffs, _NS_COEFFS_PRESETS)
        ns_coeffs = _NS_COEFFS_PRESETS[ns_coeffs]
    check.non_negative("weight_decay", weight_decay)
    check.optional(check.mask, "weight_decay_mask", weight_decay_mask)
    check.unit_interval("adam_b1", adam_b1)
    check.unit_interval("adam_b2", adam_b2, "pass a value in [0, 1) such as 0.999")
    check.non_negative("adam_eps_root", adam_eps_root)
    check.non_negative("adam_weight_decay", adam_weight_decay)
    check.optional(check.learning_rate, "adam_learning_rate", adam_learning_rate)
    if adam_learning_rate is None:
        adam_learning_rate = learning_rate
    check.dimension_numbers(
        "muon_weight_dimension_numbers", muon_weight_dimension_numbers, MuonDimensionNumbers
    )
    dims_given = muon_weight_dimension_numbers
    if dims_given is None:
        muon_weight_dimension_numbers = MuonDimensionNumbers()

    def labels(params):
        if dims_given is None:
            return jax.tree.map(lambda x: "muon" if x.ndim == 2 else "adam", params)
        return jax.tree.map(
            lambda d, sub: jax.tree.map(lambda _: "adam" if d is None else "muon", sub),
            _resolve(dims_given, params), params,
            is_leaf=lambda x: x is None or is_dimension_numbers(x),
        )  # fmt: skip

    def muon_dims(updates):
        # Dimension numbers on the Muon leaves, MaskedNode where partition masked AdamW's out.
        dims = _resolve(muon_weight_dimension_numbers, updates)
        mask = jax.tree.map(lambda label: label == "muon", labels(updates))
        return jax.tree.map(
            lambda d, sub: jax.tree.map(lambda m: d if m else MaskedNode(), sub),
            dims, mask,
            is_leaf=lambda x: x is None or is_dimension_numbers(x) or isinstance(x, MaskedNode),
        )  # fmt: skip

    return partition(
        {
            "muon": chain(
                scale_by_muon(
                    ns_coeffs, ns_steps, beta, eps, mu_dtype, nesterov=nesterov,
                    adaptive=adaptive, preconditioning=preconditioning,
                    weight_dimension_numbers=muon_dims,
                ),
                scale_by_shape(muon_dims, consistent_rms),
                add_decayed_weights(weight_decay, weight_decay_mask),
                scale_by_learning_rate(learning_rate),
            ),
            "adam": adamw(
                adam_learning_rate, adam_b1, adam_b2, eps, adam_eps_root, mu_dtype,
                adam_weight_decay, nesterov=nesterov,
            ),
        },
        labels,
    )  # fmt: skip
