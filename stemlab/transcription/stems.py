"""The notes of a stem, transcribed once per content and method and kept in its derived data.

:func:`stem_notes` picks the method from the stem's kind (:mod:`.kinds`) unless told, runs it on
the stem's mid channel, and caches the table as JSON next to the stem's decoded audio; the file
name holds the stem's content token, the method and the method's version, so new audio or a
better method is transcribed afresh and nothing stale is ever read. A silent stem has no notes and
costs no transcription.

>>> stem_notes(demo_song()["bass"]).head(2)                        # doctest: +SKIP
   onset  offset  pitch  velocity  confidence
0  0.000   1.811     29       120        0.83
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..dsp import is_silent
from ..errors import DecodeError, UsageError
from ..files import atomic_write_bytes, read_derived
from .drums import transcribe_drums
from .kinds import METHODS, kind_of
from .monophonic import transcribe_monophonic
from .notes import NOTE_COLUMNS, empty_notes, note_frame
from .polyphonic import transcribe_polyphonic

__all__ = ["stem_notes", "transcribe_audio", "method_for", "VERSIONS"]

#: Bumped whenever a method's output changes, so cached notes of the old version are not read.
VERSIONS = {"monophonic": 1, "polyphonic": 1, "drums": 1}



def method_for(name: str, method: str | None = None) -> str:
    """The method used for the stem ``name``: ``method`` if given (checked), else its kind's."""
    if method is None:
        return kind_of(name).method
    if method not in METHODS:
        raise UsageError(f"unknown transcription method {method!r}: use one of {', '.join(METHODS)}")
    return method


def stem_notes(stem, *, method: str | None = None,
               silence_db: float | Callable[[], float] | None = None) -> pd.DataFrame:
    """The notes table of ``stem`` (a :class:`~stemlab.stemset.Stem`), from its cache if it has one.

    ``silence_db``: below this RMS level (dBFS) the stem is silent and has no notes (default: the
    backstop of :func:`stemlab.dsp.is_silent`); a function giving it is only called on a cache miss.
    """
    method = method_for(stem.name, method)
    path = stem.derived_path(f"notes.{method}.v{VERSIONS[method]}", ".json")
    cached = read_derived(path, _load)
    if cached is not None:
        return cached
    audio = np.asarray(stem.audio)
    if not _finite(audio):
        raise DecodeError(f"{stem.path.name} has NaN or infinite samples, so the {stem.name} stem cannot be "
                          f"transcribed: export the file again, or replace those samples (np.nan_to_num) and save it")
    if callable(silence_db):
        silence_db = silence_db()
    silent = is_silent(audio) if silence_db is None else is_silent(audio, threshold_db=silence_db)
    notes = empty_notes() if silent else transcribe_audio(audio.mean(axis=0), stem.sr, stem=stem.name, method=method)
    _save(path, notes, method)
    return notes


def transcribe_audio(y: np.ndarray, sr: int, *, stem: str, method: str | None = None) -> pd.DataFrame:
    """The notes of mono audio ``y`` as a stem named ``stem`` is transcribed (its kind's method and
    pitch range, or ``method``), with no cache.

    >>> transcribe_audio(np.zeros(22050, np.float32), 22050, stem="bass").empty
    True
    """
    method = method_for(stem, method)
    if not _finite(np.asarray(y)):
        raise UsageError(f"the {stem} audio has NaN or infinite samples: clean it first (e.g. np.nan_to_num)")
    if method == "drums":
        return transcribe_drums(y, sr)
    pitched = transcribe_monophonic if method == "monophonic" else transcribe_polyphonic
    return pitched(y, sr, pitch_range=kind_of(stem).pitch_range)


def _finite(audio: np.ndarray) -> bool:
    """Every sample finite (checked a channel at a time: no temporary the size of the stem)."""
    return all(np.isfinite(part).all() for part in (audio if audio.ndim > 1 else (audio,)))


def _save(path: Path, notes: pd.DataFrame, method: str) -> None:
    record = {"method": method, "version": VERSIONS[method],
              "columns": {name: notes[name].tolist() for name in NOTE_COLUMNS}}
    atomic_write_bytes(path, json.dumps(record, separators=(",", ":")).encode("utf-8"), durable=False)


def _load(path: Path) -> pd.DataFrame:
    columns = json.loads(path.read_text(encoding="utf-8"))["columns"]
    if not columns["onset"]:
        return empty_notes()
    return note_frame(*(columns[name] for name in NOTE_COLUMNS))
