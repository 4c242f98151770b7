"""``stemlab.transcribe``: the notes of a stem or a set; and how well notes match the true ones.

>>> notes = stemlab.transcribe(stemlab.demo_song())               # doctest: +SKIP
>>> notes.groupby("stem").size()["bass"]                          # doctest: +SKIP
111

Scores follow the MIREX conventions that ``mir_eval.transcription`` implements (the tests check
these against it): an estimated note matches a true one when their onsets are within 50 ms and
their pitches within 50 cents (and, if offsets count, their offsets within 20% of the true note's
length or 50 ms), each note matching at most one other; F1 is over the largest such matching.
Drum hits are scored as onsets per class of General MIDI keys (kick, snare, hi-hat ...).

>>> truth = note_frame([0.0, 0.5, 1.0], [0.4, 0.9, 1.4], [60, 62, 64], [90] * 3, [1.0] * 3)
>>> guess = note_frame([0.02, 0.5, 1.2], [0.4, 0.9, 1.4], [60, 61, 64], [90] * 3, [1.0] * 3)
>>> round(score_notes(guess, truth).f1, 3)
0.333
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from ..config import Settings
from ..fetching import as_set
from ..stemset import Stem
from ..transcription.notes import NOTE_COLUMNS, note_frame  # noqa: F401 (the examples use note_frame)

__all__ = ["transcribe", "score_notes", "score_onsets", "score_drums", "NoteScore", "ONSET_TOLERANCE", "PITCH_TOLERANCE"]

ONSET_TOLERANCE = 0.05   # s
PITCH_TOLERANCE = 50.0   # cents
OFFSET_RATIO = 0.2       # of the true note's length
OFFSET_MIN = 0.05        # s
SAME_HIT = 0.03          # s: hits of one drum class closer than this are one (a flam, hat + pedal)


def transcribe(stem_or_set, *, method: str | None = None, stems: list[str] | None = None,
               cache_dir: str | os.PathLike | None = None, settings: Settings | None = None) -> pd.DataFrame:
    """The notes of a stem, or of every stem of a set, as one tidy table:
    ``stem, onset, offset, pitch, velocity, confidence`` (seconds, MIDI note numbers; drums as
    General MIDI percussion keys).

    Parameters
    ----------
    stem_or_set : Stem, StemSet, set folder or set id
    method : {"monophonic", "polyphonic", "drums"}, optional
        One method for every stem. Default: each stem's kind chooses (lead vocals and bass are
        monophonic, drums and percussion drums, everything else polyphonic).
    stems : list of str, optional
        Only these stems of a set.

    Each stem is transcribed once per content and method; later calls read the cache. Silent
    stems have no notes.
    """
    if isinstance(stem_or_set, Stem):
        return stem_or_set.notes(method=method).assign(stem=stem_or_set.name)[["stem", *NOTE_COLUMNS]]
    stemset = as_set(stem_or_set, cache_dir=cache_dir, settings=settings, what="transcribe")
    return stemset.notes(stems, method=method)


@dataclass(frozen=True)
class NoteScore:
    """Precision, recall and F1 of estimated notes (or onsets) against the true ones."""

    precision: float
    recall: float
    f1: float
    matched: int
    estimated: int
    true: int


def _score(hits: np.ndarray, estimated: int, true: int) -> NoteScore:
    """The score of the largest matching in the ``(true, estimated)`` boolean matrix ``hits``."""
    matched = 0
    if hits.size and hits.any():
        matched = int((maximum_bipartite_matching(csr_matrix(hits.astype(np.int8)), perm_type="column") >= 0).sum())
    precision = matched / estimated if estimated else 0.0
    recall = matched / true if true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if matched else 0.0
    return NoteScore(precision, recall, f1, matched, estimated, true)


def _close(distance: np.ndarray, tolerance) -> np.ndarray:
    """``distance <= tolerance``, with distances rounded to 0.1 ms (as ``mir_eval.transcription``
    does), so that 0.05000000001 s counts as 50 ms."""
    return np.round(distance, 4) <= tolerance


def score_notes(estimate: pd.DataFrame, reference: pd.DataFrame, *, onset_tolerance: float = ONSET_TOLERANCE,
                pitch_tolerance: float = PITCH_TOLERANCE, offsets: bool = False) -> NoteScore:
    """Note precision, recall and F1 of ``estimate`` against ``reference`` (notes tables of one
    stem): onsets within ``onset_tolerance`` s, pitches within ``pitch_tolerance`` cents, and with
    ``offsets=True`` offsets within 20% of the true note's length (at least 50 ms)."""
    ref_on, est_on = reference["onset"].to_numpy(float), estimate["onset"].to_numpy(float)
    hits = _close(np.abs(ref_on[:, None] - est_on[None, :]), onset_tolerance)
    cents = 100.0 * np.abs(reference["pitch"].to_numpy(float)[:, None] - estimate["pitch"].to_numpy(float)[None, :])
    hits &= _close(cents, pitch_tolerance)
    if offsets:
        ref_off = reference["offset"].to_numpy(float)
        allowed = np.maximum(OFFSET_RATIO * (ref_off - ref_on), OFFSET_MIN)
        hits &= _close(np.abs(ref_off[:, None] - estimate["offset"].to_numpy(float)[None, :]), allowed[:, None])
    return _score(hits, len(est_on), len(ref_on))


def score_onsets(estimate: np.ndarray, reference: np.ndarray, *, window: float = ONSET_TOLERANCE) -> NoteScore:
    """Onset precision, recall and F1: each true onset matches at most one estimate within
    ``window`` s, a true onset ``r`` being within it of an estimate ``e`` when
    ``e - window <= r <= e + window`` in floating point (exactly as ``mir_eval.onset.f_measure``,
    which does not round)."""
    estimate, reference = np.asarray(estimate, float), np.asarray(reference, float)
    hits = (reference[:, None] >= estimate[None, :] - window) & (reference[:, None] <= estimate[None, :] + window)
    return _score(hits, len(estimate), len(reference))


def score_drums(estimate: pd.DataFrame, reference: pd.DataFrame, classes: Mapping[str, tuple[int, ...]],
                *, window: float = ONSET_TOLERANCE) -> dict[str, NoteScore]:
    """Onset scores per drum class (a name and the General MIDI keys it covers), for every class
    the reference plays; for a reference that plays none of them (a shaker, a tambourine), one
    score ``"any"`` of the onsets whatever their key. Hits of one class within 30 ms of each other
    count once, on both sides."""
    scores = {}
    for name, keys in classes.items():
        true = _hits(reference, keys)
        if len(true):
            scores[name] = score_onsets(_hits(estimate, keys), true, window=window)
    if not scores and len(reference):
        every = sorted(set(reference["pitch"]) | set(estimate["pitch"]))
        scores["any"] = score_onsets(_hits(estimate, every), _hits(reference, every), window=window)
    return scores


def _hits(notes: pd.DataFrame, keys) -> np.ndarray:
    onsets = np.sort(notes[notes["pitch"].isin(keys)]["onset"].to_numpy(float))
    keep = np.ones(len(onsets), bool)
    last = -np.inf
    for i, onset in enumerate(onsets):
        keep[i] = onset - last >= SAME_HIT
        if keep[i]:
            last = onset
    return onsets[keep]
