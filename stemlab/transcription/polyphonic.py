"""Polyphonic note transcription: harmonic-template NMF on a constant-Q spectrogram.

The method, in seven steps:

1. **Spectrogram.** A constant-Q transform with 3 bins per semitone and a hop of about 11.6 ms
   (512 samples at 44.1 kHz), magnitude compressed by a square root.
2. **Templates and tuning.** One spectral template per MIDI pitch in ``pitch_range``: harmonic
   partials (Gaussian bumps on the log-frequency axis) with amplitudes decaying with partial number,
   centred on the stem's tuning (estimated from spectral peaks unless given).
3. **Activations.** Non-negative matrix factorisation with the templates held fixed: the
   activations are fitted by multiplicative updates minimising the Kullback-Leibler divergence,
   with an L1 penalty for sparsity. A few smooth broadband templates soak up note attacks and
   noise. (Letting the partial amplitudes adapt to the timbre was tried and made more octave
   ghosts than it removed, so the templates stay fixed.)
4. **Onsets.** Each pitch's onset strength is the rise of the log spectrum at its own partials
   (against the strongest neighbouring bin, so vibrato does not count), which the short CQT windows
   of the high partials time sharply.
5. **Notes.** Per pitch, smoothed activations (in dB) are thresholded with hysteresis relative to
   the stem's loudest activation. A note begins where its level, rising, passes 16 dB below the
   level it reaches (the foot of a slow bowed or sung attack, the middle of a sharp attack that the
   long low-frequency CQT windows smear), moved to a peak of the pitch's onset strength close by; it
   is split where its onset strength peaks and its level rises again (a note struck again while it
   still sounds). Too-short notes are dropped.
6. **Ghosts.** Strongest first, a note is kept only if the spectrum shows a clear peak at one of
   its first partials that no stronger simultaneous note explains: this removes octave and twelfth
   "ghosts" above or below real notes, and low notes fitted to noise.
7. **Chords.** Notes starting together (within about 50 ms) share one onset, their median; and a
   sustained note (its level steady, not decaying, either side) that sounds on through such a chord
   attack is split there, since in ensemble parts a tone common to two chords is re-attacked with
   the new chord even though its level hardly changes. Struck notes ringing on (piano with the
   pedal down) decay, so they are left whole.

Measured on the demo song (mir_eval note F1, 50 ms onsets, offsets ignored; with offsets at 20% in
brackets): keyboard 0.68 (0.37), guitar 0.70 (0.30), strings 0.65 (0.34), brass 0.94 (0.02),
backing vocals 0.61 (0.10); synthesised random chords 0.98-1.0. About 0.02-0.05 s per second of audio.

Limits: this is a signal-model method, not a trained one. It assumes harmonic sounds, so unpitched
noise and strongly inharmonic timbres give spurious notes. A sustained note sung or bowed again
with no change of level and no other note starting with it (the choir's "aah - aah" under heavy
reverb) cannot be told from one held note, so it is missed; and a sustained note held on while a
single new note enters is not split. Notes an octave above a louder note playing at the same time
(octave doublings in chords) are often dropped as ghosts or found late. Offsets are placed where the
level falls well below the note's peak, which for decaying sounds and long reverb is rarely where
the key was released, so offset-aware scores are low. Vibrato deeper than about a third of a
semitone blurs the pitch.

>>> import numpy as np
>>> sr = 22050
>>> t = np.arange(sr) / sr
>>> tone = sum(np.sin(2 * np.pi * 440.0 * k * t) / k for k in range(1, 6))
>>> y = np.concatenate([np.zeros(sr // 4), 0.2 * tone * np.exp(-2 * t), np.zeros(sr // 4)])
>>> notes = transcribe_polyphonic(y.astype(np.float32), sr, pitch_range=(48, 84), tuning=0.0)
>>> notes["pitch"].tolist()
[69]
"""

from __future__ import annotations

import itertools

import librosa
import numpy as np
import pandas as pd
import scipy.ndimage

from .notes import empty_notes, note_frame

__all__ = ["estimate_cqt_tuning", "harmonic_templates", "transcribe_polyphonic"]

BINS_PER_SEMITONE = 3
BINS_PER_OCTAVE = 12 * BINS_PER_SEMITONE
HOP_SECONDS = 0.0116            # about 512 samples at 44.1 kHz
N_PARTIALS = 12
PARTIAL_DECAY = 0.8             # partial k has amplitude k ** -PARTIAL_DECAY in a template
N_NOISE = 8                     # broadband templates for attacks and noise
N_ITER = 40                     # multiplicative updates
SPARSITY = 0.02                 # L1 weight on activations, relative to the mean spectral level
ON_DB = -15.0                   # a note starts above this level relative to the loudest activation
OFF_DB = -25.0                  # ... and ends below this (hysteresis)
RELATIVE_OFF_DB = -20.0         # ... or below this relative to its own peak
FLOOR_DB = -80.0                # activations are floored at this level relative to the loudest
SMOOTH = 5                      # frames of moving average on activations before tracking
MIN_NOTE = 0.06                 # seconds
FLUX_LAG = 2                    # frames over which a partial's rise is measured (pitch onset strength)
FLUX_WAIT = 4                   # an onset-strength peak is the largest within this many frames ...
FLUX_MEDIAN = 51                # ... and exceeds the median over this many frames ...
FLUX_RATIO = 3.0                # ... this many times ...
FLUX_MIN = 0.05                 # ... and this absolute rise (natural log units)
ONSET_DB = -16.0                # a note starts where its level passes this far below the level ...
PEAK_FRAMES = 25                # ... it reaches within this many frames of its steepest rise ...
SNAP_FRAMES = 6                 # ... or at an onset-strength peak this close to that
RISE_DB = 3.0                   # a note is re-struck at an onset-strength peak where its level rises this much ...
RISE_BEFORE = 4                 # ... from its lowest in this many frames before ...
RISE_FRAMES = 8                 # ... within this many frames after
MIN_GAP = 5                     # frames between onsets of one pitch
EVIDENCE_PARTIALS = 4           # a note must show a peak of its own among its first partials ...
EVIDENCE_DB = 4.0               # ... this far above the spectrum a semitone either side
GHOST_DB = -10.0                # a note with no partial of its own needs this level relative to the stronger
CHORD_NOTES = 2                 # a chord attack: at least this many notes starting ...
COMMON_FRAMES = 4               # ... each within this many frames of the last; they share one onset
SUSTAIN_FRAMES = 40             # a note is sustained if its level changes little over this many frames ...
SUSTAIN_DB = 3.0                # ... (falls by less than this) either side of a chord attack
HELD_FRAMES = 20                # ... that comes at least this long after it began (and before it ends)
SILENCE_RMS = 1e-4


def _hop(sr: int) -> int:
    """A CQT hop near HOP_SECONDS that is a multiple of 32 samples (what librosa's CQT needs)."""
    return max(32, round(sr * HOP_SECONDS / 32) * 32)


def _cqt(y: np.ndarray, sr: int, lowest: int, n_bins: int, hop: int) -> np.ndarray:
    """Square-root CQT magnitude, bins from MIDI ``lowest - 1`` upwards, float32 (bins x frames)."""
    fmin = librosa.midi_to_hz(lowest - 1)
    spec = librosa.cqt(y, sr=sr, hop_length=hop, fmin=fmin, n_bins=n_bins,
                       bins_per_octave=BINS_PER_OCTAVE, tuning=0.0)
    return np.sqrt(np.abs(spec)).astype(np.float32)


def estimate_cqt_tuning(V: np.ndarray) -> float:
    """The tuning (fractions of a semitone, -0.5 to 0.5) from the spectral peaks of a CQT whose bin 0
    sits on an equal-tempered semitone, as :func:`librosa.estimate_tuning` would report it.

    Peaks on semitone bins whose lower neighbours are stronger than their upper ones lie a little
    flat:

    >>> V = np.full((60, 4), 0.01, np.float32)
    >>> V[[9, 21, 33]], V[[8, 20, 32]], V[[10, 22, 34]] = 1.0, 0.8, 0.2
    >>> estimate_cqt_tuning(V)
    -0.13
    """
    if V.shape[0] < 3 or not np.any(V > 0):
        return 0.0
    logv = np.log(np.maximum(V, 1e-9))
    left, mid, right = logv[:-2], logv[1:-1], logv[2:]
    peak = (mid > left) & (mid >= right) & (V[1:-1] > np.percentile(V, 95))
    if not np.any(peak):
        return 0.0
    b, t = np.nonzero(peak)
    a, m, c = left[b, t], mid[b, t], right[b, t]
    offset = np.clip(0.5 * (a - c) / np.minimum(a - 2 * m + c, -1e-9), -0.5, 0.5)   # parabolic peak
    position = (b + 1 + offset) / BINS_PER_SEMITONE                                  # semitones
    angle = np.angle(np.sum(V[1:-1][b, t] * np.exp(2j * np.pi * position)))
    return float(np.round(angle / (2 * np.pi), 2))


def _partial_bumps(n_bins: int, pitches: np.ndarray, lowest: int, tuning: float) -> np.ndarray:
    """Gaussian bumps for each pitch's partials: (bins x pitches x partials), zero past the top bin."""
    bins = np.arange(n_bins, dtype=np.float64)[:, None, None]
    partials = np.arange(1, N_PARTIALS + 1, dtype=np.float64)
    centre = (pitches[:, None] - (lowest - 1) + tuning + 12 * np.log2(partials)[None, :]) * BINS_PER_SEMITONE
    width = 0.6 + 0.15 * np.log2(partials)[None, None, :]       # high partials stray (inharmonicity)
    bumps = np.exp(-0.5 * ((bins - centre[None]) / width) ** 2)
    bumps[:, centre > n_bins - 1] = 0.0
    return bumps.astype(np.float32)


def harmonic_templates(n_bins: int, pitch_range: tuple[int, int], tuning: float = 0.0,
                       lowest: int | None = None) -> np.ndarray:
    """Unit-sum harmonic templates, one column per MIDI pitch in ``pitch_range`` (bins x pitches),
    on a CQT with 3 bins per semitone whose bin 0 is MIDI ``lowest - 1``.

    >>> W = harmonic_templates(120, (40, 60))
    >>> W.shape, int(W[:, 0].argmax()), bool(np.allclose(W.sum(axis=0), 1.0))
    ((120, 21), 3, True)
    """
    lowest = pitch_range[0] if lowest is None else lowest
    pitches = np.arange(pitch_range[0], pitch_range[1] + 1, dtype=np.float64)
    amps = np.arange(1, N_PARTIALS + 1, dtype=np.float32) ** -PARTIAL_DECAY
    W = _partial_bumps(n_bins, pitches, lowest, tuning) @ amps
    return W / np.maximum(W.sum(axis=0, keepdims=True), 1e-12)


def _noise_templates(n_bins: int) -> np.ndarray:
    """Smooth, overlapping broadband bands (bins x N_NOISE) that absorb attacks and noise."""
    centres = np.linspace(0, n_bins - 1, N_NOISE)
    width = n_bins / N_NOISE
    bins = np.arange(n_bins)[:, None]
    W = np.exp(-0.5 * ((bins - centres[None]) / width) ** 2).astype(np.float32)
    return W / W.sum(axis=0, keepdims=True)


def _nmf(V: np.ndarray, W_pitch: np.ndarray) -> np.ndarray:
    """Activations (pitches x frames) of fixed templates by KL-divergence multiplicative updates with
    an L1 sparsity penalty; broadband noise templates join the fit and are dropped afterwards."""
    W = np.concatenate([W_pitch, _noise_templates(V.shape[0])], axis=1).astype(np.float32)
    eps = np.float32(1e-9)
    denominator = W.sum(axis=0)[:, None] + np.float32(SPARSITY * V.mean())
    H = np.full((W.shape[1], V.shape[1]), V.mean() + eps, np.float32)
    for _ in range(N_ITER):
        H *= (W.T @ (V / (W @ H + eps))) / denominator
    return H[:W_pitch.shape[1]]


def _segments(active: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) frame ranges where ``active`` is True.

    >>> _segments(np.array([0, 1, 1, 0, 1], bool))
    [(1, 3), (4, 5)]
    """
    edges = np.diff(np.concatenate([[0], active.astype(np.int8), [0]]))
    return [(int(a), int(b)) for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))]


def _levels(H: np.ndarray) -> np.ndarray:
    """Activations smoothed over SMOOTH frames, in dB relative to the loudest (pitches x frames)."""
    smooth = scipy.ndimage.uniform_filter1d(H, SMOOTH, axis=1)
    return 20 * np.log10(np.maximum(smooth, H.max() * 10 ** (FLOOR_DB / 20)) / H.max())


def _pitch_flux(V: np.ndarray, W_pitch: np.ndarray) -> np.ndarray:
    """Onset strength per pitch (pitches x frames): the rise of the log spectrum at each pitch's own
    partials, over FLUX_LAG frames and against the strongest neighbouring bin (so vibrato does not
    count as a rise), weighted by the pitch's template. High partials, whose CQT windows are short,
    time it sharply; a partial shared with another note rises when either is struck."""
    logv = np.log(np.maximum(V, 1e-5))
    ref = scipy.ndimage.maximum_filter1d(logv, 3, axis=0)
    rise = np.zeros_like(logv)
    rise[:, FLUX_LAG:] = np.maximum(logv[:, FLUX_LAG:] - ref[:, :-FLUX_LAG], 0.0)
    weights = np.sqrt(W_pitch)
    return (weights / weights.sum(axis=0, keepdims=True)).T @ rise


def _flux_peaks(flux: np.ndarray) -> np.ndarray:
    """Frames where a pitch's onset strength peaks clearly above its surroundings (boolean)."""
    local_max = flux == scipy.ndimage.maximum_filter1d(flux, 2 * FLUX_WAIT + 1)
    background = scipy.ndimage.median_filter(flux, FLUX_MEDIAN) * FLUX_RATIO
    return local_max & (flux > background) & (flux > FLUX_MIN)


def _steepest(level: np.ndarray, a: int, b: int) -> int:
    """The frame in [a, b) where the level (dB) rises fastest."""
    a, b = max(1, a), min(level.size - 1, b)
    if b <= a:
        return max(0, min(a, level.size - 1))
    slope = level[a + 1:b + 1] - level[a - 1:b - 1]
    return a + int(np.argmax(slope))


def _crossing(level: np.ndarray, steep: int) -> int:
    """Where a rise through frame ``steep`` passes ONSET_DB below the level it reaches within
    PEAK_FRAMES: the onset of a slow attack, and about the middle of a sharp one smeared by the
    CQT's long low-frequency windows."""
    peak = level[steep:steep + PEAK_FRAMES].max()
    above = np.flatnonzero(level[steep:steep + PEAK_FRAMES] >= peak + ONSET_DB)
    return steep + int(above[0])


def _rises(level: np.ndarray, frame: int) -> bool:
    """Whether the level after ``frame`` rises above its level just before (a note struck again)."""
    before = level[max(0, frame - RISE_BEFORE):frame + 1].min()
    after = level[frame + 1:frame + 1 + RISE_FRAMES].max(initial=-np.inf)
    return after - before >= RISE_DB


def _onsets(level: np.ndarray, peaks: np.ndarray, start: int, stop: int) -> list[int]:
    """A segment's note onsets: the pitch's onset-strength peak nearest its first rise (or the
    steepest rise if none is near), then later peaks where the level rises again."""
    rise = _crossing(level, _steepest(level, start - RISE_FRAMES, start + RISE_FRAMES))
    near = np.flatnonzero(peaks[max(0, rise - SNAP_FRAMES):rise + SNAP_FRAMES + 1]) + max(0, rise - SNAP_FRAMES)
    onsets = [int(near[np.argmin(np.abs(near - rise))]) if near.size else rise]
    for frame in np.flatnonzero(peaks[start:stop]) + start:
        if frame - onsets[-1] >= MIN_GAP and frame < stop - MIN_GAP and _rises(level, frame):
            onsets.append(int(frame))
    return onsets


def _track(H: np.ndarray, flux: np.ndarray, frames_per_second: float) -> list[tuple[int, int, int, float]]:
    """Notes (start frame, stop frame, pitch index, peak activation) from activations by hysteresis,
    split where a pitch's onset strength peaks and its level rises again."""
    level = _levels(H)
    min_frames = max(1, round(MIN_NOTE * frames_per_second))
    notes = []
    for p in range(H.shape[0]):
        h = level[p]
        peaks = _flux_peaks(flux[p])
        for start, stop in _segments(h > OFF_DB):
            if h[start:stop].max() < ON_DB:
                continue
            # the first onset can land past a short segment's end (the rise it times is later)
            bounds = [*([o for o in _onsets(h, peaks, start, stop) if o < stop] or [start]), stop]
            for a, b in itertools.pairwise(bounds):
                top = a + int(np.argmax(h[a:b]))
                if h[top] < ON_DB:
                    continue
                after = np.flatnonzero(h[top:b] < h[top] + RELATIVE_OFF_DB)
                end = top + int(after[0]) if after.size else b
                if end - a >= min_frames:
                    notes.append((a, end, p, float(10 ** (h[top] / 20) * H.max())))
    return notes


def _sustained(level: np.ndarray, frame: int) -> bool:
    """Whether a pitch's level holds steady over the SUSTAIN_FRAMES either side of ``frame`` (a
    bowed, blown or sung note going on through it), rather than decaying (a struck note ringing on,
    or the note's release)."""
    before = level[max(0, frame - SUSTAIN_FRAMES):frame]
    after = level[frame:frame + SUSTAIN_FRAMES]
    if before.size < SUSTAIN_FRAMES or after.size < SUSTAIN_FRAMES:
        return False
    half = SUSTAIN_FRAMES // 2
    return (before[half:].mean() >= before[:half].mean() - SUSTAIN_DB
            and after.mean() >= before.mean() - SUSTAIN_DB)


def _groups(begins: np.ndarray) -> list[np.ndarray]:
    """Indices of ``begins`` grouped into runs whose consecutive onsets lie within COMMON_FRAMES."""
    order = np.argsort(begins, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(begins[order]) > COMMON_FRAMES) + 1) if begins.size else []


def _chord_starts(notes: list[tuple[int, int, int, float]]) -> np.ndarray:
    """Frames where a chord changes: at least CHORD_NOTES notes begin within COMMON_FRAMES of each
    other; one frame per chord, the median of its notes' onsets."""
    begins = np.array([n[0] for n in notes], dtype=int)
    return np.array([int(np.median(begins[g])) for g in _groups(begins) if g.size >= CHORD_NOTES], dtype=int)


def _common_onsets(notes: list[tuple[int, int, int, float]]) -> list[tuple[int, int, int, float]]:
    """Notes of one chord (onsets within COMMON_FRAMES) moved to their median onset."""
    begins = np.array([n[0] for n in notes], dtype=int)
    out = list(notes)
    for g in _groups(begins):
        if g.size >= CHORD_NOTES:
            shared = int(np.median(begins[g]))
            for i in g:
                out[i] = (shared, max(notes[i][1], shared + 1), *notes[i][2:])
    return out


def _split_at_chord_changes(notes: list[tuple[int, int, int, float]], level: np.ndarray,
                            H: np.ndarray) -> list[tuple[int, int, int, float]]:
    """Split sustained notes where other notes start while they sound: in ensemble parts a tone
    common to two chords is re-attacked with the new chord, though its level hardly changes."""
    starts = _chord_starts(notes)
    out = []
    for begin, end, p, peak in notes:
        cuts = [int(c) for c in starts[(starts > begin + HELD_FRAMES) & (starts < end - HELD_FRAMES)]
                if _sustained(level[p], int(c))]
        cuts = [c for i, c in enumerate(cuts) if i == 0 or c - cuts[i - 1] >= HELD_FRAMES]
        for a, b in itertools.pairwise([begin, *cuts, end]):
            out.append((a, b, p, float(H[p, a:b].max()) if a > begin else peak))
    return sorted(out)


def _contrast_db(spectrum: np.ndarray, centre: float) -> float:
    """How far (dB) the spectrum at a partial stands above the level a semitone either side."""
    c = round(centre)
    if c - BINS_PER_SEMITONE < 0 or c + BINS_PER_SEMITONE >= spectrum.size:
        return 0.0
    peak = spectrum[c - 1:c + 2].max()
    side = 0.5 * (spectrum[c - BINS_PER_SEMITONE] + spectrum[c + BINS_PER_SEMITONE])
    return float(20 * np.log10(peak / max(side, 1e-9)))


def _drop_ghosts(notes: list[tuple[int, int, int, float]], V: np.ndarray,
                 tuning: float) -> list[tuple[int, int, int, float]]:
    """Keep the notes the spectrum itself supports, strongest first: a note needs a clear peak at one
    of its first partials that no stronger note sounding with it explains (this removes notes an
    octave or twelfth below or above a real one, and low notes fitted to noise). A note with no
    partial of its own (an octave above a stronger one) is kept only if it is nearly as strong."""
    partials = 12 * np.log2(np.arange(1, N_PARTIALS + 1))
    kept: list[tuple[int, int, int, float]] = []
    for note in sorted(notes, key=lambda n: -n[3]):
        begin, end, p, level = note
        spectrum = V[:, begin:end].mean(axis=1)
        others = [o for o in kept if min(end, o[1]) - max(begin, o[0]) > 0.3 * (end - begin)]
        theirs = np.array([o[2] + partials for o in others]).ravel()
        own = [k for k in partials[:EVIDENCE_PARTIALS] if not np.any(np.abs(theirs - (p + k)) < 0.5)]
        if own:
            centres = [(p + 1 + k + tuning) * BINS_PER_SEMITONE for k in own]     # p counts from lowest
            ok = max(_contrast_db(spectrum, c) for c in centres) >= EVIDENCE_DB
        else:
            ok = level > max(o[3] for o in others) * 10 ** (GHOST_DB / 20)
        if ok:
            kept.append(note)
    return sorted(kept)


def transcribe_polyphonic(y: np.ndarray, sr: int, *, pitch_range: tuple[int, int] = (28, 96),
                          tuning: float | None = None) -> pd.DataFrame:
    """Notes of a polyphonic, pitched stem (see the module docstring for the method and its limits).

    ``y`` is 1-D mono float audio at ``sr``; ``pitch_range`` the lowest and highest MIDI pitch to
    look for; ``tuning`` the deviation of A4 from 440 Hz in fractions of a semitone (what
    :func:`librosa.estimate_tuning` returns), or None to estimate it. Returns a notes table
    (:func:`stemlab.transcription.notes.note_frame`): onset/offset in seconds, integer MIDI pitch,
    velocity 1-127 from the note's level, confidence 0-1; :func:`empty_notes` for silence.

    >>> transcribe_polyphonic(np.zeros(22050, np.float32), 22050).empty
    True
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"expected 1-D mono audio, got shape {y.shape}")
    lo, hi = int(pitch_range[0]), int(pitch_range[1])
    if not lo <= hi:
        raise ValueError(f"pitch_range must be (low, high) with low <= high, got {pitch_range}")
    if not np.all(np.isfinite(y)):
        raise ValueError("audio contains NaN or infinite samples")
    if y.size < sr // 10 or np.sqrt(np.mean(y ** 2)) < SILENCE_RMS:
        return empty_notes()
    hop = _hop(sr)
    top = min(hi + 36, int(np.floor(librosa.hz_to_midi(0.45 * sr))) - 1)
    n_bins = (top - lo + 2) * BINS_PER_SEMITONE
    V = _cqt(y, sr, lo, n_bins, hop)
    if tuning is None:
        tuning = estimate_cqt_tuning(V)
    W = harmonic_templates(n_bins, (lo, hi), float(tuning))
    H = _nmf(V, W)
    if H.max() <= 0:
        return empty_notes()
    fps = sr / hop
    notes = _drop_ghosts(_track(H, _pitch_flux(V, W), fps), V, float(tuning))
    notes = _split_at_chord_changes(_common_onsets(notes), _levels(H), H)
    if not notes:
        return empty_notes()
    begin, end, p, level = (np.array(column) for column in zip(*notes))
    db = 20 * np.log10(np.maximum(level, 1e-12) / H.max())
    velocity = 127 + db * (126 / 40.0)
    confidence = np.clip((db - ON_DB) / -ON_DB, 0.05, 1.0)
    return note_frame(begin / fps, end / fps, p + lo, velocity, confidence)
