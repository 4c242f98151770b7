"""Notes tables to and from Standard MIDI Files, with pretty_midi.

A file holds one track per stem, named exactly after the stem, with the General MIDI program of
its kind; drum stems are on the percussion channel (channel 10). Reading a file back gives the
same table, one ``stem`` per track name.

>>> table = note_frame([0.0, 0.5], [0.4, 1.0], [60, 64], [90, 70], [1.0, 1.0]).assign(stem="keyboard")
>>> pm = to_pretty_midi(table)
>>> [(i.name, i.program, i.is_drum, len(i.notes)) for i in pm.instruments]
[('keyboard', 0, False, 2)]
>>> notes_from_midi(pm)[["stem", "pitch"]].values.tolist()
[['keyboard', 60], ['keyboard', 64]]
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pretty_midi

from ..files import atomic_write_bytes
from .kinds import kind_of
from .notes import NOTE_COLUMNS, empty_notes, note_frame

__all__ = ["to_pretty_midi", "write_midi", "notes_from_midi"]

TEMPO = 120.0  # written tempo: times are stored in seconds, so it only sets the tick grid


def to_pretty_midi(notes: pd.DataFrame, *, stems: list[str] | None = None) -> pretty_midi.PrettyMIDI:
    """A :class:`pretty_midi.PrettyMIDI` with one instrument per stem of ``notes`` (a table with a
    ``stem`` column), in the order of ``stems`` (default: first appearance). A stem in ``stems``
    without notes still gets its (empty) track, so every stem of a set is in the file."""
    order = list(stems) if stems is not None else list(dict.fromkeys(notes["stem"]))
    pm = pretty_midi.PrettyMIDI(initial_tempo=TEMPO)
    for name in order:
        kind = kind_of(name)
        track = pretty_midi.Instrument(program=kind.program, is_drum=kind.is_drum, name=name)
        rows = notes[notes["stem"] == name]
        for onset, offset, pitch, velocity in rows[["onset", "offset", "pitch", "velocity"]].itertuples(index=False):
            track.notes.append(pretty_midi.Note(velocity=int(velocity), pitch=int(np.clip(pitch, 0, 127)),
                                                start=float(onset), end=float(offset)))
        pm.instruments.append(track)
    return pm


def write_midi(notes: pd.DataFrame, path: str | os.PathLike, *, stems: list[str] | None = None) -> Path:
    """Write ``notes`` as a Standard MIDI File (atomically: no half-written file is ever left)."""
    buffer = io.BytesIO()
    to_pretty_midi(notes, stems=stems).write(buffer)
    return atomic_write_bytes(path, buffer.getvalue(), durable=False)


def notes_from_midi(source: str | os.PathLike | pretty_midi.PrettyMIDI) -> pd.DataFrame:
    """A notes table (with ``stem`` = track name, confidence 1) from a MIDI file or object."""
    pm = source if isinstance(source, pretty_midi.PrettyMIDI) else pretty_midi.PrettyMIDI(str(source))
    tables = []
    for track in pm.instruments:
        if not track.notes:
            continue
        columns = np.array([(n.start, n.end, n.pitch, n.velocity) for n in track.notes], np.float64).T
        tables.append(note_frame(*columns, np.ones(columns.shape[1])).assign(stem=track.name or "unnamed"))
    if not tables:
        return empty_notes().assign(stem=pd.Series(dtype=object))[["stem", *NOTE_COLUMNS]]
    return pd.concat(tables, ignore_index=True)[["stem", *NOTE_COLUMNS]]
