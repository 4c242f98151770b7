"""Figures without pyplot state: drawing for reports and widgets never touches the user's figures.

>>> fig = new_figure(figsize=(4, 2))
>>> fig.canvas.__class__.__name__
'FigureCanvasAgg'
"""

from __future__ import annotations

__all__ = ["new_figure", "figure_png"]


def new_figure(*, figsize=(8, 3), dpi: int = 100):
    """A matplotlib Figure on an Agg canvas, not registered with pyplot (nothing to close)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def figure_png(draw, *, figsize=(7, 3), dpi: int = 80) -> str:
    """An ``<img>`` with the PNG of what ``draw(ax)`` draws on a new figure (no pyplot state)."""
    import base64
    import io

    fig = new_figure(figsize=figsize)
    draw(fig.add_subplot())
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return f"<img src='data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}'/>"
