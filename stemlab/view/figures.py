"""Figures without pyplot state: drawing for reports and widgets never touches the user's figures.

>>> fig = new_figure(figsize=(4, 2))
>>> fig.canvas.__class__.__name__
'FigureCanvasAgg'
"""

from __future__ import annotations

__all__ = ["new_figure"]


def new_figure(*, figsize=(8, 3), dpi: int = 100):
    """A matplotlib Figure on an Agg canvas, not registered with pyplot (nothing to close)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig
