r"""Regularization penalties to add to a loss: L1, L2 and elastic net over a params pytree.

A penalty in the loss and a regularizing transform in the optimizer are two ways
to the same objective; they differ in what the optimizer does with it:

- **L2**: ``l2_penalty(params, strength)`` in the loss has gradient
  :math:`\lambda w`, exactly what :func:`jopt.add_decayed_weights` adds *before*
  the adaptive scaling (coupled L2). With adaptive optimizers prefer decoupled
  weight decay (:func:`jopt.adamw`) instead.
- **L1 / elastic net**: the subgradient :math:`\lambda\,\operatorname{sign}(w)`
  never vanishes, so with a penalty in the loss weights oscillate around zero and
  are never exactly zero. For sparse models use the proximal transforms
  :func:`jopt.add_l1_proximal` / :func:`jopt.add_elastic_net_proximal` at the end
  of the chain; they set small weights exactly to zero.
- Use a loss penalty when the regularized objective must be reported, compared or
  differentiated (validation curves, line searches such as :func:`jopt.lbfgs`,
  which need the value), or when only some outputs of a model are penalized.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree as jtree
from jopt.base import Params


def _selected(params: Params, mask: Any) -> list[jax.Array]:
    """The leaves of ``params`` that the mask keeps (all of them without a mask)."""
    leaves = jax.tree.leaves(params)
    if mask is None:
        return leaves
    if callable(mask):
        mask = mask(params)
    check.same_structure(
        "mask", mask, params, "params",
        "build the mask from the params, e.g. jax.tree.map(lambda p: p.ndim > 1, params)",
    )  # fmt: skip
    return [leaf for leaf, keep in zip(leaves, jax.tree.leaves(mask), strict=True) if keep]


def _total(values: list[jax.Array]) -> jax.Array:
    # Accumulate in float32 at least, so that bfloat16 params do not round the sum.
    dtype = jnp.promote_types(jnp.float32, jnp.result_type(*values)) if values else jnp.float32
    return jtree.sum([v.astype(dtype) for v in values]) if values else jnp.zeros([], dtype)


def l1_penalty(
    params: Params, strength: float, mask: Any | Callable[[Params], Any] | None = None
) -> jax.Array:
    r"""L1 (lasso) penalty of a params pytree, :math:`\lambda \sum_i |w_i|`.

    Args:
      params: a pytree of arrays.
      strength: :math:`\lambda`, >= 0.
      mask: a pytree of bools like ``params`` (or a function of the params returning
        one): penalize only the leaves marked True; default all.

    Returns:
      A float32 (or wider) scalar.

    References:
      Tibshirani, `Regression Shrinkage and Selection via the Lasso
      <https://doi.org/10.1111/j.2517-6161.1996.tb02080.x>`_, 1996.
    """
    check.non_negative("strength", strength, "pass a penalty strength >= 0 such as 1e-4")
    return strength * _total([jnp.abs(w) for w in _selected(params, mask)])


def l2_penalty(
    params: Params, strength: float, mask: Any | Callable[[Params], Any] | None = None
) -> jax.Array:
    r"""L2 (ridge) penalty of a params pytree, :math:`\frac{\lambda}{2} \sum_i w_i^2`.

    The factor :math:`\frac12` makes its gradient :math:`\lambda w`, the update of
    :func:`jopt.add_decayed_weights` with ``weight_decay=strength``.

    Args:
      params: a pytree of arrays.
      strength: :math:`\lambda`, >= 0.
      mask: a pytree of bools like ``params`` (or a function returning one); default all.

    Returns:
      A float32 (or wider) scalar.

    References:
      Hoerl & Kennard, `Ridge Regression <https://doi.org/10.1080/00401706.1970.10488634>`_,
      1970.
    """
    check.non_negative("strength", strength, "pass a penalty strength >= 0 such as 1e-4")
    return 0.5 * strength * _total([jnp.square(w) for w in _selected(params, mask)])


def elastic_net_penalty(
    params: Params,
    l1_strength: float,
    l2_strength: float,
    mask: Any | Callable[[Params], Any] | None = None,
) -> jax.Array:
    r"""Elastic-net penalty, :math:`\lambda_1 \sum_i |w_i| + \frac{\lambda_2}{2} \sum_i w_i^2`.

    The same objective as :func:`jopt.add_elastic_net_proximal` (with the same
    strengths), but as a loss term: smooth optimizers see its subgradient.

    Args:
      params: a pytree of arrays.
      l1_strength: :math:`\lambda_1`, >= 0.
      l2_strength: :math:`\lambda_2`, >= 0.
      mask: a pytree of bools like ``params`` (or a function returning one); default all.

    Returns:
      A float32 (or wider) scalar.

    References:
      Zou & Hastie, `Regularization and Variable Selection via the Elastic Net
      <https://doi.org/10.1111/j.1467-9868.2005.00503.x>`_, 2005.
    """
    check.non_negative("l1_strength", l1_strength, "pass a penalty strength >= 0 such as 1e-4")
    check.non_negative("l2_strength", l2_strength, "pass a penalty strength >= 0 such as 1e-4")
    return l1_penalty(params, l1_strength, mask) + l2_penalty(params, l2_strength, mask)
