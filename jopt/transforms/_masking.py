"""Apply a transform to part of the parameters only (:func:`masked`).

The inner transform sees the masked-out leaves replaced by :class:`MaskedNode`
(an empty pytree node), so it keeps no state for them; their updates pass
through unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from jopt import _check as check
from jopt._flat._capability import check_flat
from jopt._flat._tree import FlatTree
from jopt.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    OptState,
    Params,
    with_extra_args_support,
)
from jopt.transforms._flat_masking import element_mask, masked_flat_update
from jopt.tree._state_mapping import _ParamsMarker as ParamsMarker

MASK_FIX = "build the mask from the params, e.g. jax.tree.map(lambda p: p.ndim > 1, params)"


class MaskedState(NamedTuple):
    """State of :func:`masked`."""

    inner_state: OptState  # the inner transform's state, over the unmasked leaves only


class MaskedNode(NamedTuple):
    """Placeholder for a masked-out leaf: a pytree node without children.

    ``jax.tree.map`` skips it, so transforms keep no state for it.
    """


def is_tree_function(prefix: Any) -> bool:
    """Whether ``prefix`` is a function of the params rather than a tree.

    A pytree whose nodes are callable (an equinox-style module holding bools) is a
    tree: it is a function only if every one of its leaves is callable, as in optax.
    """
    callable_leaves = jax.tree.leaves(jax.tree.map(callable, prefix))
    return bool(callable_leaves) and all(callable_leaves)


def resolve_tree_prefix(
    prefix: Any, tree: Any, name: str, tree_name: str = "params", fix: str = MASK_FIX
) -> Any:
    """Call ``prefix`` on ``tree`` if it is a function; check it is a prefix of ``tree``.

    Raises a ValueError naming the first differing path when it is not.
    """
    resolved = prefix(tree) if is_tree_function(prefix) else prefix
    try:
        jax.tree.map(lambda m, t: None, resolved, tree)
    except (ValueError, TypeError):
        check.same_structure(name, resolved, tree, tree_name, fix)
        raise ValueError(  # differs only in a way first_mismatch cannot locate
            f"{name} has structure {jax.tree.structure(resolved)}, which is not a prefix of "
            f"the {tree_name}' structure {jax.tree.structure(tree)}; {fix}"
        ) from None
    return resolved


def _apply_mask(tree, mask_tree):
    return jax.tree.map(lambda m, x: x if m else MaskedNode(), mask_tree, tree)


def masked(
    inner: GradientTransformation,
    mask: Any | Callable[[Params], Any],
    *,
    mask_compatible_extra_args: bool = False,
) -> GradientTransformationExtraArgs:
    r"""Apply ``inner`` only where ``mask`` is True; other updates pass through.

    .. math::  u_i = \begin{cases} T(g)_i & \text{mask}_i \\ g_i & \text{otherwise}\end{cases}

    Args:
      inner: the transform to apply to the selected leaves.
      mask: a pytree of bools with the params' structure (or a prefix of it), or a
        function ``params -> such a pytree``. The mask must be static (Python or
        concrete bools) for the transform to be jit-compatible.
      mask_compatible_extra_args: also mask extra ``update`` arguments whose
        structure equals the updates'.

    Example:
      >>> import jax, jopt
      >>> decay_matrices = jopt.masked(
      ...     jopt.add_decayed_weights(1e-4), lambda p: jax.tree.map(lambda x: x.ndim > 1, p))
    """
    check.transformation("inner", inner)
    check.mask("mask", mask)
    check.boolean("mask_compatible_extra_args", mask_compatible_extra_args)
    inner = with_extra_args_support(inner)

    def init(params):
        if isinstance(params, ParamsMarker):  # tree_map_params: the inner state mirrors it
            return MaskedState(inner_state=inner.init(params))
        check_flat("masked", [inner], params)
        if isinstance(params, FlatTree):  # whole buffers; masked-out elements are zeroed
            return MaskedState(inner_state=inner.init(params))
        mask_tree = resolve_tree_prefix(mask, params, "mask")
        return MaskedState(inner_state=inner.init(_apply_mask(params, mask_tree)))

    def update(updates, state, params=None, **extra_args):
        if isinstance(updates, FlatTree):
            keep = element_mask(resolve_tree_prefix(mask, updates.to_tree(), "mask"), updates)
            new, inner_state = masked_flat_update(
                inner, keep, updates, state.inner_state, params, extra_args,
                mask_compatible_extra_args,
            )  # fmt: skip
            return new, MaskedState(inner_state=inner_state)
        mask_tree = resolve_tree_prefix(mask, updates, "mask", "updates")
        if mask_compatible_extra_args:
            structure = jax.tree.structure(updates)
            extra_args = {
                k: _apply_mask(v, mask_tree) if jax.tree.structure(v) == structure else v
                for k, v in extra_args.items()
            }
        inner_params = None if params is None else _apply_mask(params, mask_tree)
        new_updates, inner_state = inner.update(
            _apply_mask(updates, mask_tree), state.inner_state, inner_params, **extra_args
        )
        merged = jax.tree.map(
            lambda m, new, old: new if m else old, mask_tree, new_updates, updates
        )
        return merged, MaskedState(inner_state=inner_state)

    return GradientTransformationExtraArgs(init, update)
