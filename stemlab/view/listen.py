"""``stemlab.listen``: small MP3 players for any arrays, right under a plot.

>>> stemlab.listen(mix, vocals_estimate, sr=44100, labels=["mix", "estimate"])   # doctest: +SKIP

Each signal is encoded to MP3 (not WAV: a tenth of the size in the notebook) and shown with an
``<audio>`` element; levels are kept as they are (no normalisation), so quiet stays quiet.
"""

from __future__ import annotations

import html
from typing import Sequence

import numpy as np

from ..errors import UsageError
from .html import audio_player

__all__ = ["listen", "Players"]


class Players:
    """A row of labelled MP3 players; displays itself in a notebook."""

    def __init__(self, items: Sequence[tuple[str, bytes]]):
        self.items = list(items)

    def _repr_html_(self) -> str:
        cells = "".join(
            f"<div style='display:flex;flex-direction:column;margin-right:14px'><small>{html.escape(label)}</small>"
            f"{audio_player(data, title=label, style='height:30px;width:230px')}</div>"
            for label, data in self.items)
        return f"<div style='display:flex;flex-wrap:wrap;align-items:flex-end'>{cells}</div>"


def listen(*signals, sr: int | None = None, labels: Sequence[str] | None = None) -> Players:
    """Players for ``signals``: arrays ``(channels, samples)`` or ``(samples,)`` (with ``sr=``) or
    :class:`~stemlab.stemset.Stem` objects (their own rate and cached MP3)."""
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
    return Players(items)
