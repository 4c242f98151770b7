"""MP3 players for notebook reprs that keep the saved notebook small: audio goes over the comm.

A :class:`PlayerWidget` shows HTML whose ``<audio data-mp3="key">`` elements (from
:func:`~stemlab.view.html.audio_player` with ``key=``) the page fills with MP3s the kernel sends
as binary buffers of custom messages, as :class:`~stemlab.view.widget.StemView` does: the page
sends ``{"type": "need-audio"}``, the kernel answers ``{"type": "audio", "key": k}`` with the
MP3 as the buffer, one message per player (``{"type": "no-audio"}`` when it has none). Audio is
no trait, so neither the widget state nor the output holds any.

:func:`outputs` puts a still (the same HTML without players, and a note to re-run the cell) before
the widget, for a notebook reopened where widgets cannot render; the live widget hides it.

>>> from stemlab.view.html import audio_player
>>> view = PlayerWidget(html=audio_player(key="0", title="drums"), audio={"0": lambda: b"ID3..."})
>>> [sorted(data) for data in outputs(view, "<p>drums</p>", text="drums")]
[['text/html', 'text/plain'], ['application/vnd.jupyter.widget-view+json', 'text/plain']]
"""

from __future__ import annotations

import pathlib
from typing import Callable, Mapping

import anywidget
from traitlets import Unicode

__all__ = ["PlayerWidget", "outputs", "show", "NOTE", "RERUN", "STILL_CLASS"]

#: The class of the still; a live widget hides the output just before it when it has this class.
STILL_CLASS = "stemlab-still"
#: An element the page fills with a note when no kernel answers (the widget's HTML has one).
NOTE = "<small data-stemlab-note style='color:#a04000'></small>"
#: What the still says instead of the players.
RERUN = "<small style='color:#a04000'>Kernel not connected: re-run this cell to listen.</small>"


class PlayerWidget(anywidget.AnyWidget):
    """``html`` with players; ``audio`` maps each player's key to its MP3 (bytes, or a function
    that returns them, called each time a page asks: nothing is held or encoded before)."""

    _esm = pathlib.Path(__file__).parent / "players.js"
    html = Unicode("").tag(sync=True)

    def __init__(self, *, html: str, audio: Mapping[str, bytes | Callable[[], bytes]]):
        self._audio = dict(audio)
        super().__init__(html=html)
        self.on_msg(self._handle_message)

    def _handle_message(self, _widget, content, _buffers) -> None:
        if not (isinstance(content, dict) and content.get("type") == "need-audio"):
            return
        if not self._audio:
            self.send({"type": "no-audio"})
        for key, mp3 in self._audio.items():
            self.send({"type": "audio", "key": key}, buffers=[mp3() if callable(mp3) else mp3])


def outputs(widget: PlayerWidget, still_html: str, *, text: str) -> list[dict]:
    """Two display bundles: ``still_html`` (``text`` for plain-text viewers), then the widget."""
    view = widget._repr_mimebundle_()
    view = view[0] if isinstance(view, tuple) else view  # anywidget gives (data, metadata)
    return [{"text/plain": text, "text/html": f"<div class='{STILL_CLASS}'>{still_html}</div>"},
            {**view, "text/plain": ""}]


def show(bundles: list[dict]) -> None:
    """Display each of :func:`outputs` in the notebook."""
    from IPython.display import display

    for data in bundles:
        display(data, raw=True)
