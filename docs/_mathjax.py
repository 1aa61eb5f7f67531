"""Copy MathJax 3 next to the built pages, so formulas render without network access.

The files come from the ``django-static-mathjax`` package (the ``docs`` extra), which
ships MathJax's release files and nothing else. Without it the pages load MathJax
from its CDN, Sphinx's default.
"""

from __future__ import annotations

import pathlib
import shutil


def copy_mathjax(static: pathlib.Path) -> str | None:
    """Copy the TeX-to-HTML bundle and its fonts under ``static``; return its path there."""
    try:
        import mathjax
    except ImportError:
        return None
    source = pathlib.Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (source / "tex-chtml.js").exists():
        return None
    target = static / "mathjax"
    fonts = pathlib.Path("output", "chtml", "fonts", "woff-v2")
    # MathJax finds its fonts relative to the script: [script folder]/output/chtml/fonts.
    shutil.copytree(source / fonts, target / fonts, dirs_exist_ok=True)
    shutil.copy2(source / "tex-chtml.js", target / "tex-chtml.js")
    return "mathjax/tex-chtml.js"
