"""``stemlab.listen``: small MP3 players for any arrays, right under a plot.

>>> stemlab.listen(mix, vocals_estimate, sr=44100, labels=["mix", "estimate"])   # doctest: +SKIP

Each signal is encoded to MP3 and played through the kernel
(:class:`~stemlab.view.players.PlayerWidget`), so no audio goes into the saved notebook; opened
without a kernel, the labels stay and the players say to re-run the cell. ``embed=True`` puts the
MP3s in the notebook instead (it plays anywhere, and the file grows by about 16 kB per second of
audio). Levels are kept as they are (no normalisation), so quiet stays quiet.

>>> import numpy as np
>>> quiet = listen(np.zeros(4410), sr=44100, labels=["silence"])
>>> "data:audio/mpeg" in quiet._repr_html_() + quiet.widget().html
False
>>> "data:audio/mpeg" in listen(np.zeros(4410), sr=44100, embed=True)._repr_html_()
True
"""

from __future__ import annotations

import html
from typing import Sequence

import numpy as np

from ..errors import UsageError
from .html import audio_player

__all__ = ["listen", "Players"]

PLAYER_STYLE = "height:30px;width:230px"


class Players:
    """A row of labelled MP3 players; displays itself in a notebook (see :func:`listen`)."""

    def __init__(self, items: Sequence[tuple[str, bytes]], *, embed: bool = False):
        self.items = list(items)
        self.embed = embed

    def _row(self, player) -> str:
        cells = "".join(
            f"<div style='display:flex;flex-direction:column;margin-right:14px'><small>{html.escape(label)}</small>"
            f"{player(i, label, data)}</div>" for i, (label, data) in enumerate(self.items))
        return f"<div style='display:flex;flex-wrap:wrap;align-items:flex-end'>{cells}</div>"

    def _repr_html_(self) -> str:
        """The MP3s embedded (``embed=True``), else the labels and a note to re-run the cell."""
        from .players import RERUN

        if self.embed:
            return self._row(lambda _i, label, data: audio_player(data, title=label, style=PLAYER_STYLE))
        return self._row(lambda _i, _label, _data: "") + RERUN

    def widget(self):
        """The players as a :class:`~stemlab.view.players.PlayerWidget` (MP3s sent over the comm)."""
        from .players import NOTE, PlayerWidget

        markup = self._row(lambda i, label, _data: audio_player(key=str(i), title=label, style=PLAYER_STYLE))
        return PlayerWidget(html=markup + NOTE, audio={str(i): data for i, (_, data) in enumerate(self.items)})

    def _ipython_display_(self) -> None:
        from .players import outputs, show

        if self.embed:
            show([{"text/plain": repr(self), "text/html": self._repr_html_()}])
        else:
            show(outputs(self.widget(), self._repr_html_(), text=repr(self)))

    def __repr__(self) -> str:
        return f"<{len(self.items)} players: {', '.join(label for label, _ in self.items)}>"


def listen(*signals, sr: int | None = None, labels: Sequence[str] | None = None, embed: bool = False) -> Players:
    """Players for ``signals``: arrays ``(channels, samples)`` or ``(samples,)`` (with ``sr=``) or
    :class:`~stemlab.stemset.Stem` objects (their own rate and cached MP3). ``embed=True`` stores
    the MP3s in the notebook (see the module's docstring)."""
    from ..encode import mp3_bytes

    labels = list(labels) if labels is not None else []
    items = []
    for i, signal in enumerate(signals):
        label = labels[i] if i < len(labels) else getattr(signal, "name", f"signal {i + 1}")
        if hasattr(signal, "mp3_bytes"):
            items.append((label, signal.mp3_bytes()))
            continue
        if sr is None:
            raise UsageError("listen() needs sr= for arrays")
        audio = np.asarray(signal, dtype=np.float32)
        items.append((label, mp3_bytes(audio[None] if audio.ndim == 1 else audio, sr)))
    return Players(items, embed=embed)
