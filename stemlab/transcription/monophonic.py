"""Notes of one melodic line (a lead vocal, a bass): pitch tracking with pYIN, cut into notes.

The method, in four steps:

1. **Pitch track.** :func:`librosa.pyin` gives an f0 per 11.6 ms frame (at 22.05 kHz) and whether
   the frame is voiced; frames far below the stem's loudest level are unvoiced whatever pYIN says,
   so reverb tails and MP3 residue make no notes.
2. **Tuning.** The stem's A4 deviation is the circular mean of the voiced frames' distance to the
   nearest semitone, weighted by pYIN's voicing probability; pitches are read relative to it.
3. **Boundaries.** A note starts at an onset (spectral flux, backtracked to the energy minimum
   before it), so repeated notes at one pitch are separated; or where the pitch moves to another
   semitone and stays there (a slur, with no onset), found on a median-filtered semitone track, so
   vibrato and glides, which stay within a semitone or pass through in less than 100 ms, do not
   split notes. A pitch change within 150 ms of an onset belongs to that onset.
4. **Notes.** Each span between boundaries with at least 60 ms of voiced frames is a note: from the
   boundary (or its first voiced frame) to its last voiced frame, at the median pitch of its frames
   after the first 50 ms (where scoops and the previous note's tail sit). Neighbours at the same
   pitch that no onset separates are one note. Velocity follows the note's RMS level, confidence
   pYIN's mean voicing probability.

Limits: one note at a time (two voices give the louder one, or jumps between them); offsets are
where the voicing ends, so a long reverb tail lengthens notes.

>>> sr = 22050
>>> t = np.arange(sr) / sr
>>> y = np.where(t < 0.5, np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)).astype(np.float32)
>>> transcribe_monophonic(0.5 * y, sr, pitch_range=(45, 72)).pitch.tolist()
[57, 64]
"""

from __future__ import annotations

import librosa
import numpy as np
import pandas as pd
from scipy.ndimage import median_filter

from .notes import empty_notes, note_frame

__all__ = ["transcribe_monophonic", "SR", "HOP"]

SR = 22050            # rate the method runs at
HOP = 256             # frame step: 11.6 ms
FRAME = 2048          # pYIN window: 93 ms, two periods of B0 (31 Hz)
FLOOR_DB = 50.0       # frames this far below the loudest are unvoiced
MIN_NOTE_S = 0.06     # shortest note kept (voiced time)
SETTLE_S = 0.05       # start of a note left out of its pitch
SLUR_S = 0.1          # a pitch change must last this long to start a note without an onset
ONSET_OWNS_S = 0.15   # a pitch change this close to an onset is that onset's
ONSET_WAIT_S = 0.1    # onsets closer than this are one
RELEASE_DB = 10.0      # a note ends where its level falls this far below its peak


def transcribe_monophonic(y: np.ndarray, sr: int, *, pitch_range: tuple[int, int] = (36, 84),
                          tuning: float | None = None) -> pd.DataFrame:
    """The notes of a monophonic line ``y`` (1-D, any rate) as a notes table.

    ``pitch_range`` is the lowest and highest MIDI note searched; ``tuning`` the A4 deviation in
    semitones (estimated from the pitch track when None).
    """
    y = np.asarray(librosa.resample(np.asarray(y, np.float32), orig_sr=sr, target_sr=SR, res_type="soxr_hq")
                   if sr != SR else y, np.float32)
    if y.size < FRAME or not np.any(y):
        return empty_notes()
    low, high = pitch_range
    f0, voiced, probability = librosa.pyin(y, fmin=librosa.midi_to_hz(low), fmax=librosa.midi_to_hz(high),
                                           sr=SR, frame_length=FRAME, hop_length=HOP)
    level = librosa.amplitude_to_db(librosa.feature.rms(y=y, frame_length=FRAME, hop_length=HOP)[0], ref=np.max)
    n = min(len(f0), len(level))
    voiced = voiced[:n] & (level[:n] > -FLOOR_DB) & np.isfinite(f0[:n])
    if not voiced.any():
        return empty_notes()
    midi = np.where(voiced, librosa.hz_to_midi(np.where(voiced, f0[:n], 1.0)), np.nan)
    if tuning is None:
        tuning = estimate_tuning(midi[voiced], probability[:n][voiced])
    pitch = midi - tuning
    onsets = _onsets(y)
    spans = _spans(pitch, voiced, onsets)
    return _notes(spans, pitch, voiced, probability[:n], level[:n], onsets)


def estimate_tuning(midi: np.ndarray, weights: np.ndarray | None = None) -> float:
    """A4 deviation in semitones (-0.5 to 0.5): the weighted circular mean of the distances of
    ``midi`` to the nearest semitone.

    >>> round(estimate_tuning(np.array([60.1, 62.1, 66.9 + 0.2])), 3)
    0.1
    """
    phase = np.exp(2j * np.pi * (midi - np.round(midi)))
    return float(np.angle(np.average(phase, weights=weights)) / (2 * np.pi))


def _frames(seconds: float) -> int:
    return max(1, int(round(seconds * SR / HOP)))


def _onsets(y: np.ndarray) -> np.ndarray:
    """Onset frames, each moved back to the energy minimum before it."""
    envelope = librosa.onset.onset_strength(y=y, sr=SR, hop_length=HOP)
    return librosa.onset.onset_detect(onset_envelope=envelope, sr=SR, hop_length=HOP, backtrack=True,
                                      units="frames", wait=_frames(ONSET_WAIT_S))


def _spans(pitch: np.ndarray, voiced: np.ndarray, onsets: np.ndarray) -> list[tuple[int, int]]:
    """Frame spans between boundaries: onsets, and semitone changes no onset explains."""
    semitone = np.where(voiced, np.round(np.nan_to_num(pitch)), -1.0)
    smooth = median_filter(semitone, size=_frames(SLUR_S) | 1, mode="nearest")
    changes = np.flatnonzero(smooth[1:] != smooth[:-1]) + 1
    if len(onsets):
        distance = np.abs(changes[:, None] - onsets[None, :]).min(axis=1)
        changes = changes[distance > _frames(ONSET_OWNS_S)]
    n = len(pitch)
    edges = np.unique(np.concatenate([[0, n], onsets[(onsets > 0) & (onsets < n)], changes]))
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def _notes(spans, pitch, voiced, probability, level, onsets) -> pd.DataFrame:
    is_onset = np.zeros(len(pitch) + 1, bool)
    is_onset[onsets[onsets < len(is_onset)]] = True
    settle, late = _frames(SETTLE_S), _frames(ONSET_WAIT_S)
    rows: list[list] = []  # start frame, end frame, pitch, level dB, confidence, starts at an onset
    for a, b in spans:
        frames = np.arange(a, b)[voiced[a:b]]
        if len(frames) < _frames(MIN_NOTE_S):
            continue
        body = frames[frames >= frames[0] + settle] if len(frames) > 2 * settle else frames
        note = int(np.round(np.median(pitch[body])))
        start = a if is_onset[a] and frames[0] - a < late else int(frames[0])
        frames = _until_release(frames, level)
        if rows and rows[-1][2] == note and not is_onset[a] and start - rows[-1][1] <= 3:
            rows[-1][1] = int(frames[-1]) + 1
            continue
        rows.append([start, int(frames[-1]) + 1, note, float(level[frames].max()),
                     float(probability[frames].mean()), bool(is_onset[a])])
    if not rows:
        return empty_notes()
    start, end, notes, db, confidence, _ = map(np.asarray, zip(*rows))
    seconds = HOP / SR
    return note_frame(start * seconds, end * seconds, notes, velocity_of(db), confidence)


def _until_release(frames: np.ndarray, level: np.ndarray) -> np.ndarray:
    """The frames up to where the level, after its peak, falls ``RELEASE_DB`` below it."""
    peak = int(np.argmax(level[frames]))
    below = np.flatnonzero(level[frames[peak:]] < level[frames[peak]] - RELEASE_DB)
    return frames[: peak + below[0]] if len(below) and peak + below[0] >= _frames(MIN_NOTE_S) else frames


def velocity_of(level_db: np.ndarray) -> np.ndarray:
    """MIDI velocity from a level in dB below the stem's loudest: 0 dB is 127, -40 dB is 32.

    >>> velocity_of(np.array([0.0, -40.0, -80.0])).tolist()
    [127, 32, 1]
    """
    return np.clip(np.rint(127 + np.asarray(level_db) * (127 - 32) / 40), 1, 127).astype(int)
