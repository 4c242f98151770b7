"""The notes table every transcription method returns, and the stem kinds' musical facts.

A notes table is a :class:`pandas.DataFrame` with one row per note, sorted by onset:

========== ======= ===============================================================
column     dtype   meaning
========== ======= ===============================================================
onset      float64 seconds from the start of the stem
offset     float64 seconds; always > onset
pitch      int64   MIDI note number (for drums: the General MIDI percussion key)
velocity   int64   1-127, from the note's level
confidence float64 0-1, how sure the method is of the note
========== ======= ===============================================================

:func:`stemlab.transcribe` adds a ``stem`` column in front.

>>> frame = note_frame([0.5, 0.0], [1.0, 0.4], [60, 64], [90, 70], [0.9, 0.8])
>>> frame[["onset", "pitch"]].values.tolist()
[[0.0, 64.0], [0.5, 60.0]]
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

__all__ = ["NOTE_COLUMNS", "note_frame", "empty_notes"]

NOTE_COLUMNS = ("onset", "offset", "pitch", "velocity", "confidence")
_DTYPES = {"onset": "float64", "offset": "float64", "pitch": "int64", "velocity": "int64", "confidence": "float64"}


def note_frame(onset: Sequence[float], offset: Sequence[float], pitch: Sequence[int],
               velocity: Sequence[int], confidence: Sequence[float]) -> pd.DataFrame:
    """A notes table from its columns: typed, velocity clipped to 1-127, sorted by onset then pitch."""
    frame = pd.DataFrame({
        "onset": np.asarray(onset, np.float64), "offset": np.asarray(offset, np.float64),
        "pitch": np.rint(np.asarray(pitch, np.float64)).astype(np.int64),
        "velocity": np.clip(np.rint(np.asarray(velocity, np.float64)), 1, 127).astype(np.int64),
        "confidence": np.clip(np.asarray(confidence, np.float64), 0.0, 1.0),
    })
    return frame.sort_values(["onset", "pitch"], kind="stable").reset_index(drop=True)


def empty_notes() -> pd.DataFrame:
    """A notes table with no rows (what a silent stem gives)."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in _DTYPES.items()})
