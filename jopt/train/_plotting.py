"""Figures for plots saved to files, without touching matplotlib's global state.

``matplotlib.use("Agg")`` would switch the backend of the whole process (and break
inline plots in a notebook that imports jopt); a :class:`matplotlib.figure.Figure`
given its own Agg canvas draws to files with no backend and no pyplot at all.
matplotlib is imported only when a plot is asked for: it is an optional extra.
"""

from __future__ import annotations

from typing import Any


def figure(figsize: tuple[float, float]) -> Any:
    """A new :class:`matplotlib.figure.Figure` drawn by an Agg canvas of its own; add axes
    with ``fig.subplots(...)`` and write it with ``fig.savefig(path)``."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
        from matplotlib.figure import Figure  # noqa: PLC0415
    except ImportError as error:
        raise ImportError(
            "plotting needs matplotlib; install it with pip install 'jopt[plot]'"
        ) from error
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig
