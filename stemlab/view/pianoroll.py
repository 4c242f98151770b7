"""``plot_pianoroll``: notes as bars at their pitch and time, for papers and lessons.

Takes ``ax=`` like the other plots and returns what it drew. A table with several stems gets one
colour per stem; ``truth=`` draws the true notes as outlines behind the estimate, so misses and
extra notes show at a glance. Drum notes (General MIDI percussion keys) are drawn on their keys
too, labelled with the drum's name.

>>> notes = stemlab.transcribe(s["bass"])                              # doctest: +SKIP
>>> plot_pianoroll(notes, truth=song_notes().query("stem == 'bass'"))  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import UsageError
from ..transcription.kinds import is_drum_stem

__all__ = ["plot_pianoroll", "DRUM_NAMES"]

DRUM_NAMES = {35: "kick", 36: "kick", 37: "side stick", 38: "snare", 40: "snare", 42: "closed hat",
              44: "pedal hat", 46: "open hat", 49: "crash", 51: "ride", 54: "tambourine", 70: "shaker",
              41: "floor tom", 43: "floor tom", 45: "low tom", 47: "mid tom", 48: "high tom", 50: "high tom"}
_NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def _note_name(pitch: int) -> str:
    return f"{_NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def plot_pianoroll(notes: pd.DataFrame, ax=None, *, truth: pd.DataFrame | None = None, t0: float | None = None,
                   t1: float | None = None, drums: bool | None = None, color: str | None = None):
    """Draw ``notes`` (a notes table, see :func:`stemlab.transcribe`) as a piano roll on ``ax``.

    Parameters
    ----------
    truth : notes table, optional
        Drawn as grey outlines behind ``notes``.
    t0, t1 : float, optional
        Time window (default: all the notes).
    drums : bool, optional
        Label the pitch axis with drum names (default: when ``notes`` come from a drum stem, i.e.
        its ``stem`` column names drums or percussion).
    color : str, optional
        One colour for every note (default: one per stem).

    Returns the list of the bar collections drawn (truth first).
    """
    missing = {"onset", "offset", "pitch"} - set(notes.columns)
    if missing:
        raise UsageError(f"plot_pianoroll takes a notes table (see stemlab.transcribe); this one has no "
                         f"{', '.join(sorted(missing))} column")
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(10, 3))
    shown = pd.concat([notes, truth]) if truth is not None else notes
    if t0 is None:
        t0 = float(shown["onset"].min()) if len(shown) else 0.0
    if t1 is None:
        t1 = float(shown["offset"].max()) if len(shown) else 1.0
    if not t1 > t0:
        raise UsageError(f"the time window must have t1 > t0 (got {t0} .. {t1})")
    drawn = []
    if truth is not None and len(truth):
        drawn.append(_bars(ax, truth, facecolor="none", edgecolor="0.45", linewidth=0.8, label="truth"))
    stems = list(dict.fromkeys(notes["stem"])) if "stem" in notes.columns else [None]
    for i, stem in enumerate(stems):
        rows = notes if stem is None else notes[notes["stem"] == stem]
        if len(rows):
            drawn.append(_bars(ax, rows, facecolor=color or f"C{i % 10}", edgecolor="none", alpha=0.75,
                               label=stem or "notes"))
    if drums is None:
        drums = "stem" in notes.columns and bool(len(notes)) and all(map(is_drum_stem, set(notes["stem"])))
    _pitch_axis(ax, shown["pitch"].to_numpy(int) if len(shown) else np.array([60]), drums)
    ax.set_xlim(t0, t1)
    ax.set_xlabel("time (s)")
    if len(drawn) > 1:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small", frameon=False)
    return drawn


def _bars(ax, rows: pd.DataFrame, **style):
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    patches = [Rectangle((onset, pitch - 0.4), offset - onset, 0.8)
               for onset, offset, pitch in rows[["onset", "offset", "pitch"]].itertuples(index=False)]
    label = style.pop("label")
    collection = PatchCollection(patches, match_original=False, **style)
    collection.set_label(label)
    ax.add_collection(collection)
    return collection


def _pitch_axis(ax, pitches: np.ndarray, drums: bool) -> None:
    low, high = int(pitches.min()) - 1, int(pitches.max()) + 1
    ax.set_ylim(low - 0.5, high + 0.5)
    if drums:
        keys = sorted(set(pitches.tolist()))
        ax.set_yticks(keys, [DRUM_NAMES.get(k, str(k)) for k in keys])
        ax.set_ylabel("drum")
    else:
        step = 1 if high - low <= 14 else (2 if high - low <= 28 else 12)
        ticks = [p for p in range(low, high + 1) if (p % 12 == 0 if step == 12 else p % step == 0)]
        ax.set_yticks(ticks, [_note_name(p) for p in ticks])
        ax.set_ylabel("pitch")
