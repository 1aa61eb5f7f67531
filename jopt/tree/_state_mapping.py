"""Map a function over every copy of the params inside an optimizer state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax


@jax.tree_util.register_pytree_node_class
class _ParamsMarker:
    """An empty pytree node: ``init`` maps it into the state wherever params are copied."""

    def tree_flatten(self):
        return (), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        del aux, children
        return cls()


def tree_map_params(
    initable: Callable[[Any], Any] | Any,
    f: Callable[..., Any],
    state: Any,
    /,
    *rest: Any,
    transform_non_params: Callable[[Any], Any] | None = None,
    is_leaf: Callable[[Any], bool] | None = None,
) -> Any:
    """Apply ``f`` to every params-shaped subtree of an optimizer state.

    The state's layout is found by running ``init`` on a marker instead of params: every
    subtree that ``init`` builds by mapping over the params (moments, traces ...) comes
    back as the marker, so it is known to mirror the params. Typical use: build the
    optimizer state's partition specs from the params' ones.

    Args:
      initable: a transform (anything with ``init``) or an ``init`` function.
      f: ``f(leaf, *rest_leaves)``, applied to each params-shaped subtree's leaves.
      state: the optimizer state to map over.
      *rest: pytrees shaped like the params, passed to ``f`` alongside.
      transform_non_params: applied to every other state leaf (e.g. ``lambda _: None``).
      is_leaf: passed to ``jax.tree.map`` over the params-shaped subtrees.
    """
    init = initable.init if hasattr(initable, "init") else initable
    layout = init(_ParamsMarker())

    def visit(marker_or_leaf, value):
        if isinstance(marker_or_leaf, _ParamsMarker):
            return jax.tree.map(f, value, *rest, is_leaf=is_leaf)
        return value if transform_non_params is None else transform_non_params(value)

    return jax.tree.map(visit, layout, state, is_leaf=lambda x: isinstance(x, _ParamsMarker))
