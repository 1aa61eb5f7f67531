"""Sphinx configuration: MyST pages, the notebook gallery, API reference from the docstrings."""

import pathlib
import shutil
import sys

ROOT = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

import _api  # noqa: E402 - docs/_api.py writes the API pages from each namespace's __all__
import _mathjax as _mathjax_files  # noqa: E402 - docs/_mathjax.py copies MathJax for offline pages
import _migration  # noqa: E402 - docs/_migration.py writes the optax -> jopt table
import _plots  # noqa: E402 - docs/_plots.py draws every schedule

_api.write_pages(ROOT / "api")
_mathjax = _mathjax_files.copy_mathjax(ROOT / "_generated" / "static")
_plots.write_plots(ROOT / "_generated" / "schedules")
_migration.write_table(ROOT / "_generated" / "migration_table.md")
# The gallery renders the notebooks as stored (executed, with their plots): Sphinx reads only
# files under docs/, so they are copied beside the other generated pages, never re-run here.
shutil.rmtree(ROOT / "_generated" / "notebooks", ignore_errors=True)
shutil.copytree(
    ROOT.parent / "notebooks",
    ROOT / "_generated" / "notebooks",
    ignore=shutil.ignore_patterns("_*", ".*"),
)

project = "jopt"
author = "the jopt developers"
extensions = [
    "myst_nb",  # MyST pages and notebooks (it loads myst_parser itself)
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
myst_enable_extensions = ["dollarmath", "colon_fence"]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb", ".rst": "restructuredtext"}
nb_execution_mode = "off"  # show the stored outputs: `make docs` stays offline and fast
exclude_patterns = ["_build", "README.md", "guides/_*.md"]  # sections included by a guide
html_theme = "furo"
html_title = "jopt"
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
nitpicky = False
if _mathjax:  # a local copy, so formulas render without network access; else MathJax's CDN
    html_static_path = ["_generated/static"]
    mathjax_path = _mathjax
suppress_warnings = ["myst.header"]
