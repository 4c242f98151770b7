"""Notes of one melodic line (a lead vocal, a bass): pitch tracking with pYIN, cut into notes.

The method, in four steps:

1. **Pitch track.** :func:`librosa.pyin` gives an f0 per 11.6 ms frame (at 22.05 kHz) and whether
   the frame is voiced; frames far below the stem's loudest level are unvoiced whatever pYIN says,
   so reverb tails and MP3 residue make no notes.
2. **Tuning.** The stem's A4 deviation is the circular mean of the voiced frames' distance to the
   nearest semitone, weighted by pYIN's voicing probability; pitches are read relative to it.
3. **Boundaries.** A note starts at an onset: a spectral-flux peak, moved to the start of its
   attack (the flux minimum before it, or, for a note that comes out of a gap, where the gap
   ends). An onset where the level rises (an attack) separates even repeated notes at one pitch;
   one without (vibrato, a tremolo, a legato change) separates different pitches only. A note
   also starts where the pitch moves to another semitone and stays there for 100 ms (a slur with
   no onset), found on a median-filtered semitone track, so vibrato and glides, which stay within
   a semitone or pass through quicker, do not split notes. A pitch change within 150 ms of an
   onset belongs to that onset.
4. **Notes.** Each span between boundaries with at least 60 ms of voiced frames is a note: from the
   boundary (or its first voiced frame) to where its level has fallen 10 dB below its peak (or its
   last voiced frame), at the median pitch of its frames
   after the first 50 ms (where scoops and the previous note's tail sit). Neighbours at the same
   pitch that no attack separates are one note. Velocity follows the note's RMS level, confidence
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
ATTACK_BEFORE_S = 0.08  # the dip before an attack is at most this long before its flux peak
ATTACK_AFTER_S = 0.05  # a flux peak can come this long before the attack it reports (93 ms frames)
FINE = 64             # hop of the level curve that places attacks: 2.9 ms
RISE_DB = 3.0         # a rise this large after the quietest point near an onset is an attack
GAP_DB = 15.0         # a rise this large comes out of a gap: the note starts where the gap ends
RELEASE_DB = 10.0     # a note ends where its level falls this far below its peak


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
    onsets, attacks = _onsets(y, lowest_hz=float(librosa.midi_to_hz(low)))
    spans = _spans(pitch, voiced, onsets)
    return _notes(spans, pitch, voiced, probability[:n], level[:n], onsets, attacks)


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


def _onsets(y: np.ndarray, lowest_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Onset frames, and which of them are attacks (see :func:`_attack_starts`)."""
    envelope = librosa.onset.onset_strength(y=y, sr=SR, hop_length=HOP)
    peaks = librosa.onset.onset_detect(onset_envelope=envelope, sr=SR, hop_length=HOP, backtrack=False,
                                       units="frames", wait=_frames(ONSET_WAIT_S))
    # the level curve's frames span 1.5 periods of the lowest note, so its waves do not ripple it
    frame = max(4 * FINE, int(2 ** np.ceil(np.log2(1.5 * SR / lowest_hz))))
    level = librosa.amplitude_to_db(librosa.feature.rms(y=y, frame_length=frame, hop_length=FINE)[0])
    if not len(peaks):  # librosa's backtrack refuses an empty list of events
        return peaks, np.zeros(0, bool)
    return _attack_starts(level, peaks, librosa.onset.onset_backtrack(peaks, envelope))


def _attack_starts(fine: np.ndarray, peaks: np.ndarray, backtracked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each onset starts, and whether it is an attack at all, from a level curve ``fine``
    (dB, on a 3 ms hop).

    An onset starts where the onset strength before its peak is lowest (``backtracked``), unless
    the note comes out of a gap (its level rises ``GAP_DB`` or more from a floor): then it starts
    where the floor ends. It is an attack if the level rises ``RISE_DB`` after its quietest point
    near the peak; vibrato, a tremolo or a legato change of pitch move the spectrum without one,
    and those onsets separate notes of different pitches only.
    """
    ratio = HOP // FINE
    starts, attacks = [], []
    for peak, back in zip(peaks, backtracked):
        begin = max(0, min(back * ratio, peak * ratio - int(ATTACK_BEFORE_S * SR / FINE)))
        end = min(len(fine), peak * ratio + int(ATTACK_AFTER_S * SR / FINE))
        if end - begin < 2:
            starts.append(int(back))
            attacks.append(False)
            continue
        window = fine[begin:end]
        quietest = int(np.argmin(window))
        rise = float(window[quietest:].max() - window[quietest])
        start = int(back)
        if rise >= GAP_DB:
            above = np.flatnonzero(window[quietest:] > window[quietest] + 1.0)
            start = int(round((begin + quietest + max(int(above[0]) - 1, 0)) / ratio))
        starts.append(start)
        attacks.append(rise >= RISE_DB)
    starts, attacks = np.asarray(starts, dtype=int), np.asarray(attacks, dtype=bool)
    order = np.argsort(starts, kind="stable")
    starts, attacks = starts[order], attacks[order]
    keep = np.r_[True, np.diff(starts) > 0] if len(starts) else np.zeros(0, bool)
    return starts[keep], attacks[keep]


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


def _notes(spans, pitch, voiced, probability, level, onsets, attacks) -> pd.DataFrame:
    is_onset = np.zeros(len(pitch) + 1, bool)
    is_onset[onsets[onsets < len(is_onset)]] = True
    is_attack = np.zeros(len(pitch) + 1, bool)
    is_attack[onsets[attacks & (onsets < len(is_attack))]] = True
    settle, late = _frames(SETTLE_S), _frames(ONSET_WAIT_S)
    rows: list[list] = []  # start frame, end frame, pitch, level dB, confidence
    for a, b in spans:
        frames = np.arange(a, b)[voiced[a:b]]
        if len(frames) < _frames(MIN_NOTE_S):
            continue
        body = frames[frames >= frames[0] + settle] if len(frames) > 2 * settle else frames
        note = int(np.round(np.median(pitch[body])))
        start = a if is_onset[a] and frames[0] - a < late else int(frames[0])
        frames = _until_release(frames, level)
        if rows and rows[-1][2] == note and not is_attack[a] and start - rows[-1][1] <= 3:
            rows[-1][1] = int(frames[-1]) + 1
            continue
        rows.append([start, int(frames[-1]) + 1, note, float(level[frames].max()), float(probability[frames].mean())])
    if not rows:
        return empty_notes()
    start, end, notes, db, confidence = map(np.asarray, zip(*rows))
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
