"""The public surface: __all__ unique and importable, every name documented and in the API docs."""

import importlib
import inspect
import pkgutil
import re
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


def _rst_problems(doc: str) -> list[str]:
    """docutils warnings for a docstring as Sphinx sees it (Google style through napoleon)."""
    import docutils.core  # noqa: PLC0415 - ships with sphinx, a test extra
    import docutils.utils  # noqa: PLC0415
    from sphinx.ext.napoleon import Config, GoogleDocstring  # noqa: PLC0415

    rst = str(GoogleDocstring(doc, Config(napoleon_use_param=True)))
    # Sphinx roles and directives are unknown to bare docutils: strip them, keep the rest.
    rst = re.sub(r":\w+:`([^`]*)`", r"``\1``", rst)
    rst = re.sub(r"^(\s*)\.\. \w[\w:-]*::", r"\1.. directive", rst, flags=re.M)
    problems = []
    docutils.core.publish_doctree(
        rst,
        settings_overrides={
            "report_level": docutils.utils.Reporter.WARNING_LEVEL,
            "halt_level": docutils.utils.Reporter.SEVERE_LEVEL + 1,
            "warning_stream": _Collect(problems),
        },
    )
    return problems


class _Collect:
    def __init__(self, sink: list[str]):
        self.sink = sink

    def write(self, text: str) -> None:
        if text.strip():
            self.sink.append(text.strip())


@pytest.mark.parametrize("module_name", NAMESPACES)
def test_docstrings_are_valid_restructuredtext(module_name):
    """What `make docs -W` would reject, caught without building the site."""
    module = importlib.import_module(module_name)
    broken = {}
    for name in module.__all__:
        value = getattr(module, name)
        if (inspect.isclass(value) or inspect.isfunction(value)) and value.__doc__:
            if problems := _rst_problems(inspect.getdoc(value)):
                broken[name] = problems
    assert not broken, f"{module_name}: docstrings docutils rejects: {broken}"
