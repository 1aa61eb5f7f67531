"""Write one API page per public namespace, listing every name of its ``__all__``.

The pages are regenerated on every build, so the reference cannot fall behind the code.
"""

from __future__ import annotations

import importlib
import inspect
import pathlib
import sys
import typing

from sphinx.pycode import ModuleAnalyzer, PycodeError

# Every public namespace of jopt; tests/test_public_api.py checks this list is complete.
NAMESPACES = [
    "jopt",
    "jopt.schedules",
    "jopt.tree",
    "jopt.tree_utils",
    "jopt.projections",
    "jopt.perturbations",
    "jopt.assignment",
    "jopt.microbatching",
    "jopt.losses",
    "jopt.metrics",
    "jopt.contrib",
    "jopt.train",
    "jopt.train.sharding",
    "jopt.train.checkpoint",
    "jopt.tune",
    "jopt.testing",
]


def _is_alias(value: object) -> bool:
    """A type alias (``Params = Any``, ``Metrics = dict[str, Any]``): no docstring of its own."""
    if value is typing.Any:
        return True
    alias_types = ("typing", "types", "collections.abc")
    return not inspect.isclass(value) and type(value).__module__ in alias_types


def _alias_doc(name: str, value: object) -> list[str]:
    """The docstring written under ``name = ...`` in the jopt module that defines it."""
    for module_name, module in sorted(sys.modules.items()):
        if module_name.split(".")[0] != "jopt" or getattr(module, name, None) is not value:
            continue
        try:
            docs = ModuleAnalyzer.for_module(module_name).find_attr_docs()
        except PycodeError:
            continue
        if ("", name) in docs:
            return list(docs[("", name)])
    return []


def _directive(module_name: str, name: str, value: object, seen: set[int]) -> str:
    full = f"{module_name}.{name}"
    if inspect.ismodule(value):
        return f"The :mod:`{value.__name__}` namespace has its own page.\n"
    if _is_alias(value):
        body = "".join(f"   {line}\n" if line.strip() else "\n" for line in _alias_doc(name, value))
        return f".. py:data:: {full}\n\n{body}"
    if inspect.isclass(value):
        kind = "autoclass"
    else:
        kind = "autofunction" if callable(value) else "autodata"
    # A class exported by two namespaces is described once; Sphinx rejects a second description.
    repeat = inspect.isclass(value) and id(value) in seen
    seen.add(id(value))
    return f".. {kind}:: {full}\n" + ("   :no-index:\n" if repeat else "")


def _title(text: str, underline: str) -> str:
    return f"{text}\n{underline * len(text)}\n"


def page(module_name: str, seen: set[int] | None = None) -> str:
    """The reStructuredText page of one namespace.

    reST, not MyST: autodoc emits reST, which a Markdown page would show as raw text.
    """
    module = importlib.import_module(module_name)
    seen = set() if seen is None else seen
    lines = [_title(f"``{module_name}``", "="), f".. automodule:: {module_name}\n"]
    for name in module.__all__:
        lines.append(_title(f"``{name}``", "-"))
        lines.append(_directive(module_name, name, getattr(module, name), seen))
    return "\n".join(lines)


def write_pages(folder: pathlib.Path) -> None:
    folder.mkdir(exist_ok=True)
    for stale in [*folder.glob("*.md"), *folder.glob("*.rst")]:
        stale.unlink()  # a page of a removed namespace, or of an older format
    available, seen = [], set()
    for module_name in NAMESPACES:
        try:
            text = page(module_name, seen)
        except ModuleNotFoundError:
            continue  # a namespace not built yet; tests/test_public_api.py reports it
        (folder / f"{module_name}.rst").write_text(text)
        available.append(module_name)
    index = [_title("API reference", "="), ".. toctree::", "   :maxdepth: 1", ""]
    index += [f"   {name}" for name in available] + [""]
    (folder / "index.rst").write_text("\n".join(index))
