"""Conforming a set: one rate, one channel layout, one length, and a record of what was done.

Real stems disagree: a 48 kHz stem in a 44.1 kHz folder, a mono stem beside stereo ones, stems a
frame longer or shorter than the mix, MP3s without a gapless tag. Every analysis (check, compare,
separate) works on a conformed set, built once by :meth:`stemlab.stemset.StemSet.conform`:

* **rate**: every track is decoded at the set's rate; a track whose native rate differs is
  resampled (soxr, high quality) when it is decoded;
* **channels**: the set's layout is the source's (else the widest stem's); a mono track is
  duplicated into every channel, a track with other channel counts is averaged to mono first
  (:func:`stemlab.dsp.fit_channels`);
* **length**: the set's length is the source's (else the longest stem's); shorter tracks are
  padded with silence at the end, longer ones trimmed;
* **MP3 delay**: an MP3 without a gapless tag had its standard 1,105-sample delay trimmed when it
  was decoded (:mod:`stemlab.mp3`).

Each of these is a :class:`Step` on :attr:`Conformed.steps`, so every number computed from the
set can say what was done to get it.

>>> ones = np.ones((1, 4), np.float32)
>>> c = conform({"bass": ones}, source=np.zeros((2, 5), np.float32), sr=8000)
>>> c.stems["bass"].shape, [str(step) for step in c.steps]
((2, 5), ['bass: mono, duplicated into 2 channels', 'bass: padded with 1 sample (0.1 ms) of silence at the end'])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from .dsp import fit_channels

__all__ = ["Step", "Conformed", "conform"]


@dataclass(frozen=True)
class Step:
    """One thing done to one track: ``action`` is ``"resampled"``, ``"delay"``, ``"channels"``,
    ``"padded"`` or ``"trimmed"``; ``detail`` says it in words; ``samples`` counts padded or
    trimmed samples (0 otherwise)."""

    track: str
    action: str
    detail: str
    samples: int = 0

    def __str__(self) -> str:
        return f"{self.track}: {self.detail}"

    def to_dict(self) -> dict:
        return {"track": self.track, "action": self.action, "detail": self.detail, "samples": self.samples}


@dataclass(frozen=True)
class Conformed:
    """A set's tracks as ``(channels, length)`` float32 arrays at ``sr`` (read-only views where no
    copy was needed), and the :class:`Step` s taken to make them so."""

    sr: int
    channels: int
    length: int
    stems: dict[str, np.ndarray]
    source: np.ndarray | None = None
    steps: tuple[Step, ...] = field(default=())

    def steps_of(self, track: str) -> list[Step]:
        return [step for step in self.steps if step.track == track]


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def conform(stems: Mapping[str, np.ndarray], *, source: np.ndarray | None = None, sr: int,
            native: Mapping[str, object] | None = None) -> Conformed:
    """Conform ``stems`` (and ``source``), arrays already at ``sr``, onto one layout and length.

    ``native`` maps a track name (a stem, or ``"source"``) to its file's
    :class:`~stemlab.audio.AudioInfo`, to record resampling and MP3 delays as steps.
    """
    native = dict(native or {})
    arrays = {**({"source": source} if source is not None else {}), **stems}
    arrays = {name: np.atleast_2d(audio) for name, audio in arrays.items()}
    channels = source.shape[0] if source is not None else max(a.shape[0] for a in arrays.values())
    length = source.shape[1] if source is not None else max(a.shape[1] for a in arrays.values())
    steps: list[Step] = []
    out: dict[str, np.ndarray] = {}
    for name, audio in arrays.items():
        info = native.get(name)
        if info is not None and getattr(info, "sr", sr) != sr:
            steps.append(Step(name, "resampled", f"resampled from {info.sr:,} Hz to {sr:,} Hz (soxr, high quality)"))
        if info is not None and getattr(info, "gapless", "") == "standard-delay":
            steps.append(Step(name, "delay", f"MP3 without a gapless tag: its standard delay of {info.skip:,} "
                                             f"samples trimmed from the start", info.skip))
        if audio.shape[0] != channels:
            how = ("mono, duplicated into" if audio.shape[0] == 1 else
                   f"{audio.shape[0]} channels, averaged to mono" + ("" if channels == 1 else " and duplicated into"))
            steps.append(Step(name, "channels", f"{how} {channels} channels" if channels > 1 else how))
            audio = fit_channels(audio, channels)
        missing = length - audio.shape[1]
        if missing > 0:
            steps.append(Step(name, "padded", f"padded with {_plural(missing, 'sample')} "
                                              f"({1000 * missing / sr:.1f} ms) of silence at the end", missing))
            padded = np.zeros((channels, length), dtype=np.float32)
            padded[:, : audio.shape[1]] = audio
            audio = padded
        elif missing < 0:
            steps.append(Step(name, "trimmed", f"trimmed by {_plural(-missing, 'sample')} "
                                               f"({-1000 * missing / sr:.1f} ms) at the end", -missing))
            audio = audio[:, :length]
        out[name] = audio
    return Conformed(sr=sr, channels=channels, length=length, source=out.pop("source", None) if source is not None
                     else None, stems=out, steps=tuple(steps))
