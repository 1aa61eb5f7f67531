"""Hold some parameters constant (:func:`freeze`, :func:`selective_transform`)."""

from __future__ import annotations

from typing import Any

import jax

from jopt import _check as check
from jopt.base import GradientTransformation, GradientTransformationExtraArgs, set_to_zero
from jopt.transforms._masking import masked
from jopt.transforms._partition import partition


def freeze(mask: bool | Any) -> GradientTransformationExtraArgs:
    r"""Zero the updates of the parameters where ``mask`` is True.

    .. math::  u_i = \begin{cases} 0 & \text{mask}_i \\ g_i & \text{otherwise} \end{cases}

    Chain it after an optimizer; the optimizer still keeps state for the frozen
    leaves (use :func:`selective_transform` to avoid that).

    Args:
      mask: a static bool (freeze all or nothing), or a pytree of bools shaped like
        the params (or a prefix of them): True freezes the leaf.

    Example:
      >>> import jopt
      >>> tx = jopt.chain(jopt.adam(1e-3), jopt.freeze({"encoder": True, "head": False}))
    """
    return masked(set_to_zero(), mask)


def selective_transform(
    optimizer: GradientTransformation, *, freeze_mask: bool | Any
) -> GradientTransformationExtraArgs:
    r"""Run ``optimizer`` on the unfrozen parameters only; zero the frozen ones' updates.

    .. math::  u_i = \begin{cases} 0 & \text{mask}_i \\ T(g)_i & \text{otherwise} \end{cases}

    The optimizer keeps no state for the frozen leaves.

    Args:
      optimizer: the optimizer for the trainable leaves.
      freeze_mask: a static bool, or a pytree of bools shaped like the params (or a
        prefix of them): True freezes the leaf.

    Example:
      >>> import jopt
      >>> mask = {"encoder": True, "head": False}
      >>> tx = jopt.selective_transform(jopt.adam(1e-3), freeze_mask=mask)
    """

    check.transformation("optimizer", optimizer)
    if callable(freeze_mask):  # labels map over the mask itself, as in optax
        raise TypeError(
            f"freeze_mask must be a bool or a pytree of bools, not a function, got "
            f"{freeze_mask!r}; call it on the params first: freeze_mask=fn(params)"
        )
    check.mask("freeze_mask", freeze_mask)

    def labels(params):
        del params
        return jax.tree.map(lambda frozen: "freeze" if frozen else "train", freeze_mask)

    return partition({"train": optimizer, "freeze": set_to_zero()}, param_labels=labels)
