"""The public surface: __all__ unique and importable, every name documented and in the API docs."""

import importlib
import inspect
import pkgutil
import sys

import pytest

import jopt

sys.path.insert(0, "docs")
import _api  # noqa: E402 - docs/_api.py, the generator of the API reference

NAMESPACES = _api.NAMESPACES


def _public_modules():
    """Every importable public module under jopt (no underscore anywhere in its path)."""
    found = {"jopt"}
    for info in pkgutil.walk_packages(jopt.__path__, "jopt."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            found.add(info.name)
    return found


def _reexported_by_parent(module_name):
    """A module whose every public name its parent package re-exports is documented there."""
    module = importlib.import_module(module_name)
    parent = importlib.import_module(module_name.rsplit(".", 1)[0])
    names = getattr(module, "__all__", None)
    return names is not None and set(names) <= set(getattr(parent, "__all__", ()))


def test_every_public_namespace_is_in_the_api_reference():
    candidates = _public_modules() - set(NAMESPACES) - {"jopt.demo"}
    missing = sorted(m for m in candidates if not _reexported_by_parent(m))
    assert not missing, f"public modules missing from docs/_api.py NAMESPACES: {missing}"


@pytest.mark.parametrize("module_name", NAMESPACES)
def test_all_is_unique_importable_and_documented(module_name):
    module = importlib.import_module(module_name)
    names = module.__all__
    assert len(names) == len(set(names)), f"{module_name}.__all__ has duplicates"
    undocumented = []
    for name in names:
        value = getattr(module, name)  # raises if a listed name does not import
        if (inspect.isclass(value) or inspect.isfunction(value)) and not (
            value.__doc__ or ""
        ).strip():
            undocumented.append(name)
    assert not undocumented, f"{module_name}: no docstring for {undocumented}"


@pytest.mark.parametrize("module_name", NAMESPACES)
def test_api_page_lists_every_name(module_name):
    module = importlib.import_module(module_name)
    text = _api.page(module_name)
    # A sub-namespace listed in __all__ (jopt.train.sharding) has a page of its own.
    names = [n for n in module.__all__ if not inspect.ismodule(getattr(module, n))]
    absent = [name for name in names if f"{module_name}.{name}\n" not in text]
    assert not absent, f"API page of {module_name} lacks {absent}"
