"""Real types in the public functions' annotations.

jopt's modules use ``from __future__ import annotations``, which leaves every
annotation a string (``'ScalarOrSchedule'``). Code that inspects signatures (optax's
own tests skip optimizers whose ``learning_rate`` is not annotated
``ScalarOrSchedule``; documentation tools; argument parsers) needs the objects, so the
package evaluates them once, at import, in each function's own module namespace.
"""

from __future__ import annotations

import inspect
from types import ModuleType


def resolve_annotations(*modules: ModuleType) -> list[str]:
    """Replace string annotations by the objects they name, for each name in ``__all__``.

    Returns the names whose annotations could not be evaluated (left as strings).
    """
    unresolved = []
    for module in modules:
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            fn = getattr(value, "__init__", None) if inspect.isclass(value) else value
            if not inspect.isfunction(fn):
                continue
            annotations = getattr(fn, "__annotations__", None) or {}
            if not any(isinstance(a, str) for a in annotations.values()):
                continue
            try:
                fn.__annotations__ = inspect.get_annotations(fn, eval_str=True)
            except (NameError, TypeError, SyntaxError, AttributeError):
                unresolved.append(f"{module.__name__}.{name}")
    return unresolved
