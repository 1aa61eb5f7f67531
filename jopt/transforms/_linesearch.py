"""What the line searches share: reading ``value_fn``'s arguments, the slope, and
:func:`value_and_grad_from_state`, which reuses the value and gradient a line search stored.

The searches themselves live in :mod:`jopt.transforms._backtracking` and
:mod:`jopt.transforms._zoom`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jopt import tree as jtree
from jopt.base import OptState, Params, Updates


def split_value_fn_kwargs(
    value_fn: Callable[..., Any], extra_args: dict[str, Any], owner: str
) -> dict[str, Any]:
    """The extra keyword arguments that ``value_fn`` takes, by name; any other one is an error.

    A line search evaluates ``value_fn(params, **kwargs)`` at trial points; data such
    as a batch reaches it through ``update``'s extra keyword arguments.
    """
    names = set(inspect.signature(value_fn).parameters)
    unused = sorted(k for k in extra_args if k not in names)
    if unused:
        raise TypeError(
            f"Unexpected keyword arguments: {owner}.update got {unused}, which value_fn "
            "does not take; "
            "pass only the arguments value_fn accepts (e.g. the batch it is evaluated on)"
        )
    return dict(extra_args)


def slope(updates: Updates, grad: Updates) -> jax.Array:
    r"""Slope of :math:`\eta \mapsto f(w + \eta u)` at 0: :math:`\Re\langle u, \bar g\rangle`."""
    return jnp.real(jtree.vdot(updates, conj(grad)))


def conj(tree: Any) -> Any:
    """Complex conjugate of every leaf (real leaves unchanged)."""
    return jax.tree.map(jnp.conj, tree)


def value_dtype(params: Params) -> jnp.dtype:
    """The real dtype of the first leaf: the dtype line searches keep values and step sizes in."""
    return jnp.real(jnp.empty((), jax.tree.leaves(params)[0].dtype)).dtype


def cond_print(condition: jax.Array, message: str, **kwargs: Any) -> None:
    """Print ``message`` (formatted with ``kwargs``) from compiled code when ``condition`` holds."""
    jax.lax.cond(
        condition,
        lambda: jax.debug.print(message, **kwargs, ordered=True),
        lambda: None,
    )


def _find_field(node: Any, key: str, path: str, found: list[tuple[str, Any]]) -> None:
    """Collect every NamedTuple field or dict entry named ``key`` under ``node``."""
    if isinstance(node, tuple) and hasattr(node, "_fields"):
        children = [(f, getattr(node, f), f"{path}.{f}") for f in node._fields]
    elif isinstance(node, dict):
        children = [(k, v, f"{path}[{k!r}]") for k, v in node.items()]
    elif isinstance(node, (list, tuple)):
        children = [(None, v, f"{path}[{i}]") for i, v in enumerate(node)]
    else:
        return
    for name, child, child_path in children:
        if name == key:
            found.append((child_path, child))
        _find_field(child, key, child_path, found)


def _get_unique(state: OptState, key: str) -> Any:
    found: list[tuple[str, Any]] = []
    _find_field(state, key, "state", found)
    if len(found) > 1:
        raise KeyError(
            f"the state holds {len(found)} entries named {key!r} ({[p for p, _ in found]}); "
            "value_and_grad_from_state needs exactly one line search in the optimizer"
        )
    return found[0][1] if found else None


def value_and_grad_from_state(
    value_fn: Callable[..., jax.Array],
) -> Callable[..., tuple[jax.Array, Updates]]:
    r"""Like :func:`jax.value_and_grad`, but reuse the value and gradient a line search stored.

    A line search evaluates the objective at the point it accepts; on a
    deterministic objective that is the next iterate, so the next step need not
    evaluate it again. The returned function ``f(params, *args, state=opt_state,
    **kwargs)`` returns the ``value`` and ``grad`` held in ``opt_state`` when the
    value is finite, and computes ``jax.value_and_grad(value_fn)(params, *args,
    **kwargs)`` otherwise (at the first step the stored value is :math:`+\infty`).

    Args:
      value_fn: the objective, a scalar function of the params differentiable by JAX.

    Returns:
      A function with :func:`jax.value_and_grad`'s outputs and a keyword-only ``state``.
      It raises a ``ValueError`` when the state holds no ``value`` or ``grad`` (use
      ``store_grad=True`` with :func:`scale_by_backtracking_linesearch`), and a
      ``KeyError`` when it holds more than one.

    Example:
      >>> import jax.numpy as jnp, jopt
      >>> fn = lambda x: jnp.sum(x ** 2)
      >>> solver = jopt.lbfgs()
      >>> params = jnp.array([1.0, 2.0, 3.0])
      >>> state = solver.init(params)
      >>> value_and_grad = jopt.value_and_grad_from_state(fn)
      >>> value, grad = value_and_grad(params, state=state)
      >>> updates, state = solver.update(grad, state, params, value=value, grad=grad, value_fn=fn)
    """
    if not callable(value_fn):
        raise TypeError(
            f"value_fn must be a function of the params, got {value_fn!r}; "
            "pass the objective, e.g. lambda params: loss(params, batch)"
        )

    def value_and_grad(params: Params, *fn_args: Any, state: OptState, **fn_kwargs: Any):
        value = _get_unique(state, "value")
        grad = _get_unique(state, "grad")
        if value is None or grad is None:
            raise ValueError(
                "value_and_grad_from_state found no value or grad in the state; the optimizer "
                "must store them, e.g. scale_by_backtracking_linesearch(..., store_grad=True) "
                "or scale_by_zoom_linesearch"
            )
        return jax.lax.cond(
            jnp.isfinite(value),
            lambda *_: (value, grad),
            lambda p, a, kw: jax.value_and_grad(value_fn)(p, *a, **kw),
            params,
            fn_args,
            fn_kwargs,
        )

    return value_and_grad
