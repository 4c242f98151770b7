"""Synthesise short test songs with stems, and MP3 helpers for decoder tests.

The songs are 120 bpm, C - G - Am - F, one bar per chord; each stem is a distinct, deterministic
voice (a sung-ish melody, a drum kit from noise bursts and pitch sweeps, a low bass line ...),
panned, and the mix is their sum with its peak kept below 1.0.

>>> stems = synth_stems(duration=1.0, sr=8000, silent=("brass",))
>>> len(stems), stems["bass"].shape, float(abs(stems["brass"]).max())
(12, (2, 8000), 0.0)
>>> bool(abs(mix(stems)).max() < 1.0)
True
"""

from __future__ import annotations

import os
import zlib
from typing import Callable, Iterable, Mapping

import numpy as np

from ..mp3 import first_frame
from ..taxonomy import TWELVE_STEMS
from .library import Song, default_track_id, encode_mp3, write_song

__all__ = ["synth_stems", "synth_notes", "mix", "make_song", "make_library", "strip_xing_frame",
           "tagless_vbr_mp3"]

BEAT = 0.5  # seconds (120 bpm)
BAR = 4 * BEAT
CHORDS = ((60, 64, 67), (55, 59, 62), (57, 60, 64), (53, 57, 60))  # C G Am F (MIDI)

Event = tuple[float, float, float, float]  # start s, length s, MIDI pitch, amplitude
Timbre = Callable[[float, int, int, np.random.Generator], np.ndarray]


# ----------------------------------------------------------------------------- building blocks


def _hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


def _chord(t: float) -> tuple[int, int, int]:
    return CHORDS[int(t // BAR) % len(CHORDS)]


def _additive(partials: Iterable[float], attack: float, decay: float | None = None,
              vibrato: float = 0.0) -> Timbre:
    """A timbre: harmonic partials (amplitudes), linear attack, optional exponential decay."""
    amps = np.asarray(list(partials), np.float64)

    def render(hz: float, m: int, sr: int, rng: np.random.Generator) -> np.ndarray:
        t = np.arange(m, dtype=np.float32) / np.float32(sr)
        phase = np.float32(2 * np.pi * hz) * t + np.float32(vibrato) * np.sin(np.float32(2 * np.pi * 5.5) * t)
        wave = sum(a * np.sin((k + 1) * phase) for k, a in enumerate(amps) if (k + 1) * hz < sr / 2)
        env = np.minimum(1.0, t / attack) * np.minimum(1.0, (t[::-1] + 1 / sr) / 0.01)
        return wave * env * (np.exp(-t / np.float32(decay)) if decay else np.float32(1.0))
    return render


def _noise(decay: float, brightness: int = 1, tone: float | None = None) -> Timbre:
    """A timbre: a noise burst (``brightness`` = times differenced, i.e. high-passed).

    A negative ``decay`` makes the burst swell instead (a riser).
    """

    def render(hz: float, m: int, sr: int, rng: np.random.Generator) -> np.ndarray:
        t = np.arange(m) / sr
        burst = rng.standard_normal(m + brightness)
        burst = np.diff(burst, n=brightness) / (2.0 ** brightness) if brightness else burst[:m]
        body = 0.5 * np.sin(2 * np.pi * tone * t) if tone else 0.0
        return (burst + body) * np.exp(-t / decay)
    return render


def _sweep(f0: float, f1: float, decay: float) -> Timbre:
    """A timbre: a sine gliding exponentially from ``f0`` to ``f1`` Hz (kick drum, zaps)."""

    def render(hz: float, m: int, sr: int, rng: np.random.Generator) -> np.ndarray:
        t = np.arange(m) / sr
        freq = f1 + (f0 - f1) * np.exp(-t / (decay / 3))
        return np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t / decay)
    return render


def _render(n: int, sr: int, rng: np.random.Generator, parts: list[tuple[list[Event], Timbre]]) -> np.ndarray:
    """Mono signal of ``n`` samples: every event of every part rendered with its timbre."""
    out = np.zeros(n)
    for events, timbre in parts:
        for start, length, midi, amp in events:
            i0 = int(round(start * sr))
            m = min(int(length * sr), n - i0)
            if m > 0:
                out[i0:i0 + m] += amp * timbre(_hz(midi), m, sr, rng)
    return out


def _grid(duration: float, step: float, offset: float = 0.0) -> np.ndarray:
    return np.arange(offset, duration, step)


# ----------------------------------------------------------------------------- the voices


def _vocals(d: float) -> list:
    tune = (0, 1, 2, 1)
    melody = [(t, BEAT * 0.9, _chord(t)[tune[i % 4]] + 12, 1.0) for i, t in enumerate(_grid(d, BEAT))]
    return [(melody, _additive([1, .5, .3, .15, .08], attack=.04, vibrato=.6))]


def _backing_vocals(d: float) -> list:
    oohs = [(t, 2 * BEAT, _chord(t)[k] + 12, .6) for t in _grid(d, 2 * BEAT) for k in (1, 2)]
    return [(oohs, _additive([1, .2], attack=.15, vibrato=.3))]


def _drums(d: float) -> list:
    kicks = [(t, .4, 0, 1.0) for t in _grid(d, 2 * BEAT)]
    snares = [(t, .25, 0, .5) for t in _grid(d, 2 * BEAT, BEAT)]
    hats = [(t, .06, 0, .15) for t in _grid(d, BEAT / 2)]
    return [(kicks, _sweep(150, 45, .25)), (snares, _noise(.08, 0, tone=190)), (hats, _noise(.02, 2))]


def _bass(d: float) -> list:
    line = [(t, BEAT / 2, _chord(t)[0] - 24, 1.0) for t in _grid(d, BEAT / 2)]
    return [(line, _additive([1 / k for k in range(1, 7)], attack=.005, decay=.3))]


def _guitar(d: float) -> list:
    starts = [t for bar in _grid(d, BAR) for t in (bar, bar + 1.5 * BEAT) if t < d]
    strums = [(t + .015 * k, BEAT, _chord(t)[k], .5) for t in starts for k in range(3)]
    return [(strums, _additive([1, .6, .4, .25, .15], attack=.002, decay=.4))]


def _keyboard(d: float) -> list:
    chords = [(t, BAR / 2, _chord(t)[k] - 12, .5) for t in _grid(d, BAR / 2) for k in range(3)]
    return [(chords, _additive([1, .4, .2, .1], attack=.003, decay=.8))]


def _percussion(d: float) -> list:
    shaker = [(t, .05, 0, .3 if i % 2 else .15) for i, t in enumerate(_grid(d, BEAT / 4))]
    congas = [(t, .2, 62 if i % 2 else 57, .6) for i, t in enumerate(_grid(d, BAR, 2.5 * BEAT))]
    return [(shaker, _noise(.015, 1)), (congas, _additive([1, .3], attack=.002, decay=.08))]


def _strings(d: float) -> list:
    pad = [(t, BAR, _chord(t)[k] + o, .3) for t in _grid(d, BAR) for k, o in ((0, -12), (1, 0), (2, 0))]
    return [(pad, _additive([1 / k for k in range(1, 9)], attack=.5, vibrato=.2))]


def _synth(d: float) -> list:
    arp = [(t, BEAT / 4, _chord(t)[i % 3] + 24, .4) for i, t in enumerate(_grid(d, BEAT / 4))]
    return [(arp, _additive([1, 0, 1 / 3, 0, 1 / 5, 0, 1 / 7], attack=.003, decay=.1))]


def _fx(d: float) -> list:
    riser = [(max(0.0, d - BAR), min(BAR, d), 0, .6)]
    return [([(0.0, .6, 0, 1.0)], _sweep(2000, 200, .4)), (riser, _noise(-BAR / 2.5, 1))]  # grows


def _brass(d: float) -> list:
    starts = [t for bar in _grid(d, 2 * BAR, BAR) for t in (bar + 1.5 * BEAT, bar + 3.5 * BEAT) if t < d]
    stabs = [(t, .25, _chord(t)[k], .5) for t in starts for k in range(3)]
    return [(stabs, _additive([k ** -.7 for k in range(1, 11)], attack=.03, decay=.3))]


def _woodwinds(d: float) -> list:
    line = [(t, 2 * BEAT, _chord(t)[(i + 2) % 3] + 24, .6) for i, t in enumerate(_grid(d, 2 * BEAT))]
    breath = [(t, length, pitch, .05) for t, length, pitch, _ in line]
    return [(line, _additive([1, .1, .05], attack=.08, vibrato=.4)), (breath, _noise(10.0, 2))]


def _generic(name: str) -> Callable[[float], list]:
    pitch = 48 + zlib.crc32(name.encode()) % 24

    def voice(d: float) -> list:
        return [([(t, BEAT * .8, pitch, .5) for t in _grid(d, BEAT)], _additive([1, .5], attack=.01))]
    return voice


# name -> (voice, pan from -1 left to +1 right, level)
VOICES: dict[str, tuple[Callable[[float], list], float, float]] = {
    "vocals": (_vocals, 0.0, 1.0), "backing_vocals": (_backing_vocals, -0.4, .5),
    "drums": (_drums, 0.0, .9), "bass": (_bass, 0.0, .8), "guitar": (_guitar, -0.6, .5),
    "keyboard": (_keyboard, 0.4, .5), "percussion": (_percussion, 0.7, .4),
    "strings": (_strings, -0.2, .4), "synth": (_synth, 0.3, .35), "fx": (_fx, 0.0, .3),
    "brass": (_brass, 0.5, .45), "woodwinds": (_woodwinds, -0.5, .4),
}


# ----------------------------------------------------------------------------- public API


def synth_stems(duration: float = 6.0, sr: int = 44100, names: Iterable[str] = TWELVE_STEMS,
                silent: Iterable[str] = (), seed: int = 0, peak: float = 0.8) -> dict[str, np.ndarray]:
    """Deterministic stems: ``name -> float32 array (2, samples)``.

    Parameters
    ----------
    duration, sr : length in seconds and sample rate.
    names : stems to make; names outside the 12-stem taxonomy get a plain tone.
    silent : stems that are exactly zero.
    seed : noise seed (the same seed gives the same song).
    peak : the peak of the mix (the sum of all stems); every stem is scaled by one factor.

    Examples
    --------
    >>> s = synth_stems(duration=0.5, sr=8000, names=("vocals", "drums"))
    >>> sorted(s), s["vocals"].dtype
    (['drums', 'vocals'], dtype('float32'))
    """
    n = int(round(duration * sr))
    silent = set(silent)
    stems = {}
    for name in names:
        voice, pan, level = VOICES.get(name) or (_generic(name), 0.0, .5)
        if name in silent:
            stems[name] = np.zeros((2, n), np.float32)
            continue
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        mono = _render(n, sr, rng, voice(duration))
        mono *= level / max(float(np.abs(mono).max()), 1e-9)
        angle = (pan + 1) * np.pi / 4  # constant-power pan
        stems[name] = np.stack([np.cos(angle) * mono, np.sin(angle) * mono])
    top = float(np.abs(mix(stems)).max()) if stems else 0.0
    scale = peak / top if top > 0 else 1.0
    return {name: (audio * scale).astype(np.float32) for name, audio in stems.items()}


#: the General MIDI percussion key of each part of the drum voice (kick, snare, hi-hat)
DRUM_KEYS = (36, 38, 42)
SCORED = ("vocals", "bass", "drums")  # the voices whose events are notes a listener would write down


def synth_notes(duration: float = 6.0, names: Iterable[str] = SCORED) -> list[tuple[str, float, float, int]]:
    """The score of :func:`synth_stems` for the voices in ``names`` that have one (lead vocals,
    bass and drums): ``(stem, onset s, offset s, MIDI pitch or drum key)``, sorted by stem then
    onset. The truth to score transcriptions of sandbox songs against.

    >>> synth_notes(1.0, names=("bass",))[:2]
    [('bass', 0.0, 0.25, 36), ('bass', 0.25, 0.5, 36)]
    """
    notes = []
    for name in names:
        if name not in SCORED:
            continue
        for part, (events, _timbre) in enumerate(VOICES[name][0](duration)):
            for start, length, midi, _amp in events:
                pitch = DRUM_KEYS[part] if name == "drums" else int(midi)
                notes.append((name, float(start), float(min(start + length, duration)), pitch))
    return sorted(notes, key=lambda n: (n[0], n[1], n[3]))


def mix(stems: dict[str, np.ndarray]) -> np.ndarray:
    """The sum of equally shaped stems, float32."""
    return np.sum(list(stems.values()), axis=0, dtype=np.float32)


def make_song(root: str | os.PathLike, song_id: str, *, duration: float = 6.0, sr: int = 44100,
              names: Iterable[str] = TWELVE_STEMS, silent: Iterable[str] = (), seed: int | None = None,
              truncate: Mapping[str, float] | None = None, **song_fields) -> Song:
    """Synthesise stems and write them as a library song (:func:`~.library.write_song`).

    ``seed`` defaults to one derived from ``song_id``, so different songs sound different;
    ``truncate`` maps a stem to the fraction of its MP3's bytes kept (a file cut short, whose
    header still claims the full length, as a broken encoder or upload leaves it);
    ``song_fields`` (title, labels, tracks, ...) go to ``write_song``.

    >>> import tempfile
    >>> make_song(tempfile.mkdtemp(), "tiny", duration=0.5, names=("vocals", "bass")).two.keys()
    dict_keys(['vocals', 'instrumental'])
    """
    seed = zlib.crc32(song_id.encode()) if seed is None else seed
    stems = synth_stems(duration, sr, names, silent, seed)
    song = write_song(root, song_id, stems=stems, sr=sr, **song_fields)
    for name, kept in (truncate or {}).items():
        data = song.stems[name].read_bytes()
        song.stems[name].write_bytes(data[: int(len(data) * kept)])
    return song


def make_library(root: str | os.PathLike, song_ids: Iterable[str] = ("demo-a", "demo-b"), *,
                 duration: float = 6.0, sr: int = 44100) -> dict[str, Song]:
    """A small demo library: one song per id; the first song's Apiframe parent job has a
    second track that plays the second song (as Suno's two takes per generation)."""
    song_ids = list(song_ids)
    songs = {}
    for i, song_id in enumerate(song_ids):
        tracks = None
        if i == 0 and len(song_ids) > 1:
            tracks = [{"id": default_track_id(song_id)},
                      {"id": default_track_id(song_id, 2), "song": song_ids[1]}]
        songs[song_id] = make_song(root, song_id, duration=duration, sr=sr, tracks=tracks,
                                   title=f"Sandbox song {song_id}")
    return songs


# ----------------------------------------------------------------------------- MP3 frames


def strip_xing_frame(mp3: bytes) -> bytes:
    """Remove the first MPEG frame if it is a Xing/Info/VBRI header frame (after any ID3v2 tag).

    The result is a VBR file without a frame count: a decoder must scan every frame to know
    its length (libsndfile silently stops early on such files; miniaudio scans them right).
    Bytes without such a frame are returned unchanged.

    >>> audio = np.zeros((2, 44100), np.float32)
    >>> raw = encode_mp3(audio)
    >>> len(strip_xing_frame(raw)) < len(raw), strip_xing_frame(b"not mp3")
    (True, b'not mp3')
    """
    frame = first_frame(mp3)
    if frame is None or frame.tag is None:
        return mp3
    return mp3[:frame.start] + mp3[frame.start + frame.length:]


def tagless_vbr_mp3(audio: np.ndarray, sr: int = 44100) -> bytes:
    """MP3 bytes of ``audio`` encoded VBR with the Xing frame stripped (see :func:`strip_xing_frame`)."""
    return strip_xing_frame(encode_mp3(audio, sr))
