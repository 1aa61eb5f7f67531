"""Reading and editing a state by field name (:func:`jopt.tree.get`, ``set``, ...).

An optimizer state is a tree of NamedTuples and dicts; these find a value by its field or
key name (``"learning_rate"`` inside :func:`jopt.inject_hyperparams`' state, ``"count"``
...) or a whole NamedTuple by its class name, wherever it sits. Paths name the NamedTuple
that holds each field (:class:`NamedTupleKey`), so a filter can tell apart two ``mu``
fields of different transforms in one chain.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax

KeyPath = tuple[Any, ...]
Filter = Callable[[KeyPath, Any], bool] | None


@dataclasses.dataclass(frozen=True)
class NamedTupleKey:
    """Path entry for a NamedTuple's field: ``tuple_name.name`` (e.g. ``ScaleByAdamState.mu``).

    Attributes:
      tuple_name: the NamedTuple's class name.
      name: the field's name.
    """

    tuple_name: str
    name: str

    def __str__(self) -> str:
        return f"{self.tuple_name}.{self.name}"


def _is_named_tuple(node: Any) -> bool:
    return isinstance(node, tuple) and hasattr(node, "_fields")


def _children(node: Any, path: KeyPath) -> list[tuple[KeyPath, Any]]:
    """The node's direct children with their paths ([] for a leaf)."""
    if _is_named_tuple(node):
        name = type(node).__name__
        return [((*path, NamedTupleKey(name, f)), getattr(node, f)) for f in node._fields]
    if type(node) is dict:  # insertion order, as optax walks a dict
        return [((*path, jax.tree_util.DictKey(k)), v) for k, v in node.items()]
    pairs, _ = jax.tree_util.tree_flatten_with_path(node, is_leaf=lambda x: x is not node)
    if len(pairs) == 1 and pairs[0][0] == () and pairs[0][1] is node:
        return []
    return [((*path, *p), child) for p, child in pairs]


def _entry_name(entry: Any) -> Any:
    for attribute in ("name", "key", "idx"):
        if hasattr(entry, attribute):
            return getattr(entry, attribute)
    return entry


def _has_key(node: Any, key: Any) -> bool:
    if _is_named_tuple(node):
        return type(node).__name__ == key or key in node._fields
    return isinstance(node, dict) and key in node


def _match(node: Any, key: Any, path: KeyPath) -> tuple[KeyPath, Any]:
    if _is_named_tuple(node):
        if type(node).__name__ == key:
            return path, node
        return (*path, NamedTupleKey(type(node).__name__, key)), getattr(node, key)
    return (*path, jax.tree_util.DictKey(key)), node[key]


def _top_matches(node: Any, key: Any, path: KeyPath) -> list[tuple[KeyPath, Any]]:
    # The highest nodes holding ``key``, in flattening order (not entered further here).
    if _has_key(node, key):
        return [(path, node)]
    return [m for p, c in _children(node, path) for m in _top_matches(c, key, p)]


def _find(tree: Any, key: Any, path: KeyPath = ()) -> list[tuple[KeyPath, Any]]:
    # All top-most matches first, then what each one holds deeper down (optax's order).
    holders = _top_matches(tree, key, path)
    found = [_match(node, key, p) for p, node in holders]
    for p, node in holders:
        for child_path, child in _children(node, p):
            found += _find(child, key, child_path)
    return found


def get_all_with_path(tree: Any, key: Any, filtering: Filter = None) -> list[tuple[KeyPath, Any]]:
    """Every value of ``tree`` under the field or dict key ``key``, or every NamedTuple of
    that class name, as ``(path, value)`` pairs.

    Args:
      tree: the tree to search, e.g. an optimizer state.
      key: a field name, dict key, or NamedTuple class name.
      filtering: ``filtering(path, value) -> bool`` keeps only some matches.

    Example:
      >>> import jopt, jax.numpy as jnp
      >>> state = jopt.inject_hyperparams(jopt.sgd)(0.1).init(jnp.zeros(2))
      >>> [jax.tree_util.keystr(p) for p, _ in jopt.tree.get_all_with_path(state, "count")][0]
      'InjectStatefulHyperparamsState.count'
    """
    found = _find(tree, key)
    return [(p, v) for p, v in found if filtering is None or filtering(p, v)]


def get(tree: Any, key: Any, default: Any = None, filtering: Filter = None) -> Any:
    """The single value of ``tree`` under ``key`` (see :func:`get_all_with_path`).

    Args:
      tree: the tree to search.
      key: a field name, dict key, or NamedTuple class name.
      default: returned when nothing matches.
      filtering: ``filtering(path, value) -> bool`` keeps only some matches.

    Raises:
      KeyError: if several values match; pass ``filtering`` to pick one.
    """
    found = get_all_with_path(tree, key, filtering)
    if len(found) > 1:
        paths = [jax.tree_util.keystr(p) for p, _ in found]
        raise KeyError(
            f"Found multiple values for {key!r} (at {paths}); pass filtering to pick one"
        )
    return found[0][1] if found else default


def _replace(node: Any, path: KeyPath, values: dict[str, Any], filtering: Filter) -> Any:
    def wanted(name, p, value):
        return name in values and (filtering is None or filtering(p, value))

    if _is_named_tuple(node) and wanted(type(node).__name__, path, node):
        return values[type(node).__name__]
    children = _children(node, path)
    if not children:
        return node
    new = [
        values[_entry_name(p[-1])]
        if wanted(_entry_name(p[-1]), p, c)
        else _replace(c, p, values, filtering)
        for p, c in children
    ]
    if _is_named_tuple(node):
        return type(node)(*new)
    if type(node) is dict:  # keep the insertion order (unflattening would sort the keys)
        return dict(zip(node, new, strict=True))
    return jax.tree.unflatten(jax.tree.structure(node, is_leaf=lambda x: x is not node), new)


def set(tree: Any, filtering: Filter = None, /, **kwargs: Any) -> Any:  # noqa: A001
    """A copy of ``tree`` with the values under each keyword's name replaced.

    ``set(state, learning_rate=jnp.asarray(3e-4))`` changes the rate that
    :func:`jopt.inject_hyperparams` keeps in its state.

    Args:
      tree: the tree to edit.
      filtering: ``filtering(path, value) -> bool`` restricts which matches change.
      **kwargs: field names, dict keys or NamedTuple class names, and their new values.

    Every match is replaced, nested ones included (optax 0.2.8 skips a match nested under
    a tuple inside another match, e.g. the ``count`` of a chained transform's state
    when the outer state also has a ``count``).

    Raises:
      KeyError: if a name matches nothing.
    """
    for key in kwargs:
        if not get_all_with_path(tree, key, filtering):
            given = " given the filtering" if filtering else ""
            raise KeyError(f"Found no values matching {key!r}{given} in {tree}")
    return _replace(tree, (), kwargs, filtering)
