"""How results show themselves, while the layers below the view never import view code.

A class that can be drawn names the view module that draws it; its ``.plot()``, notebook repr
(``_repr_html_``) and any interactive view are looked up in that module when called. Results
stay plain data (compute once, look many times), and importing an analysis module never loads
matplotlib or widgets.

The view module of a class ``C`` provides ``plot(obj, ax=None, **kwargs)`` (returning ``obj``, with
its artists on ``obj.ax_``, ``obj.figure_``, as scikit-learn's Display objects do) and/or
``html(obj) -> str``.

>>> class Note(Rendered):
...     _view = "stemlab.view.html"
>>> hasattr(Note(), "_repr_html_"), Note._view
(True, 'stemlab.view.html')
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import ClassVar

__all__ = ["Rendered"]


class Rendered:
    """Mixin: ``_repr_html_`` comes from the module named by ``_view``; a class that plots
    defines ``plot`` as ``return self._renderer().plot(self, ax=ax, ...)``."""

    _view: ClassVar[str]

    @classmethod
    def _renderer(cls) -> ModuleType:
        """The view module that draws this class (imported on first use)."""
        return importlib.import_module(cls._view)

    def _repr_html_(self) -> str:
        return self._renderer().html(self)
