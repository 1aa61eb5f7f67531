"""Different transforms for different parts of the params (:func:`partition`)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any, NamedTuple

import jax

from jopt import _check as check
from jopt._flat._tree import model_params
from jopt.base import GradientTransformation, GradientTransformationExtraArgs, OptState
from jopt.transforms._masking import masked, resolve_tree_prefix

_LABELS_FIX = (
    "build the labels from the params, e.g. "
    "jax.tree.map(lambda p: 'matrix' if p.ndim > 1 else 'other', params)"
)


class PartitionState(NamedTuple):
    """State of :func:`partition`."""

    inner_states: Mapping[Hashable, OptState]  # label -> that group's MaskedState


MultiTransformState = PartitionState
"""The name optax used for :class:`PartitionState` before ``partition``."""


def partition(
    transforms: Mapping[Hashable, GradientTransformation],
    param_labels: Any | Callable[[Any], Any],
    *,
    mask_compatible_extra_args: bool = False,
) -> GradientTransformationExtraArgs:
    r"""Apply ``transforms[label]`` to the params labelled ``label``.

    .. math::  u_i = T_{\ell(i)}(g)_i

    Each group's transform sees only its own leaves (the others are
    :class:`jopt.MaskedNode`), so it keeps state for them only. To freeze a group,
    map its label to :func:`jopt.set_to_zero`.

    Args:
      transforms: a mapping from label to transform.
      param_labels: a pytree of labels with the params' structure (or a prefix), or a
        function ``params -> such a pytree``; every label must be a key of ``transforms``.
      mask_compatible_extra_args: also mask extra ``update`` arguments shaped like the
        updates.

    Example:
      >>> import jax, jopt
      >>> tx = jopt.partition(
      ...     {"matrix": jopt.adamw(1e-3), "other": jopt.adam(1e-3)},
      ...     lambda p: jax.tree.map(lambda x: "matrix" if x.ndim > 1 else "other", p))
    """
    if not isinstance(transforms, Mapping):
        raise TypeError(
            f"transforms must be a mapping from label to transform, got {type(transforms).__name__}"
            "; pass e.g. {'matrix': jopt.adamw(1e-3), 'other': jopt.adam(1e-3)}"
        )
    for label, tx in transforms.items():
        check.transformation(f"transforms[{label!r}]", tx)
    if param_labels is None:
        raise TypeError(
            "param_labels must be a pytree of labels or a function of the params, got None; "
            f"{_LABELS_FIX}"
        )
    check.boolean("mask_compatible_extra_args", mask_compatible_extra_args)

    def group_masks(tree, tree_name):
        labels = resolve_tree_prefix(param_labels, tree, "param_labels", tree_name, _LABELS_FIX)
        unknown = set(jax.tree.leaves(labels)) - set(transforms)
        if unknown:
            raise ValueError(
                f"param_labels has labels {sorted(unknown, key=repr)} with no transform; "
                f"transforms has keys {sorted(transforms, key=repr)}. Add a transform for "
                "each label (jopt.set_to_zero() freezes a group)"
            )
        return {
            label: masked(tx, jax.tree.map(lambda x, label=label: x == label, labels),
                          mask_compatible_extra_args=mask_compatible_extra_args)
            for label, tx in transforms.items()
        }  # fmt: skip

    def init(params):
        # A FlatTree's labels are chosen on its tree; masked spreads them over the buffers.
        groups = group_masks(model_params(params), "params")
        return PartitionState({label: tx.init(params) for label, tx in groups.items()})

    def update(updates, state, params=None, **extra_args):
        new_states = {}
        for label, tx in group_masks(model_params(updates), "updates").items():
            updates, new_states[label] = tx.update(
                updates, state.inner_states[label], params, **extra_args
            )
        return updates, PartitionState(new_states)

    return GradientTransformationExtraArgs(init, update)


def multi_transform(
    transforms: Mapping[Hashable, GradientTransformation],
    param_labels: Any | Callable[[Any], Any],
    *,
    mask_compatible_extra_args: bool = False,
) -> GradientTransformationExtraArgs:
    """The former name of :func:`partition` (same arguments, same behaviour).

    Args:
      transforms: label -> the transform for the leaves with that label.
      param_labels: a pytree of labels matching the params, or a function of the params
        that returns one.
      mask_compatible_extra_args: also mask extra arguments whose structure matches the
        params (default False), as :func:`partition` does.
    """
    return partition(
        transforms, param_labels, mask_compatible_extra_args=mask_compatible_extra_args
    )
