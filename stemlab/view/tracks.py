"""What the views draw and play for each track of a set: audio, envelopes, spectrogram codes.

A :class:`Track` wraps a stem, the source, or a derived signal (the recombination residual). Its
envelope pyramid and STFT codes are computed on first use and, for stems, cached in the set's
``derived/`` folder beside the decoded audio.

>>> tracks = tracks_of(stemset)                       # doctest: +SKIP
>>> [t.kind for t in tracks][:2], tracks[1].envelopes.envelope(0, 10, columns=100).shape  # doctest: +SKIP
(['source', 'stem'], (1, 2, 100))
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import numpy as np

from ..files import read_derived, save_npz
from ..audio import release_pages
from ..dsp import gram, silent_level
from .envelope import Envelopes, mid_of, scan
from .spectrogram import cached_db_codes

__all__ = ["Track", "tracks_of", "prepare_tracks", "energy_matrix", "mp3_all", "THIN"]

THIN = 64  # keep every 64th frame to estimate powers (level matching): ~250,000 frames for 3 min


@dataclass(eq=False)
class Track:
    """One row of a view: a named signal with lazily computed display data."""

    name: str
    kind: str  # "source" | "stem" | "residual" | "sum"
    audio: np.ndarray
    sr: int
    label: str = ""
    cache: Callable[[str, str], object] | None = None  # (kind, suffix) -> path in derived/
    encode: Callable[[], bytes] | None = field(default=None, repr=False)

    def _file(self, kind: str, suffix: str):
        return self.cache(kind, suffix) if self.cache else None

    @cached_property
    def summary(self) -> dict:
        """The block pyramid, level and thinned copy (cached in ``derived/``; see :meth:`prepare`)."""
        stored = read_derived(self._file("summary", ".npz"), _read_summary)
        return stored if stored is not None else self._scan()[0]

    def _scan(self) -> tuple[dict, np.ndarray]:
        """Build the summary in one pass over the audio (also returns the mid channel), save it."""
        blocks, mid, energy, thinned = scan(self.audio, thin=THIN)
        level = 10 * np.log10(energy / self.audio.size) if energy > 0 else float("-inf")  # dBFS, as dsp.rms_db
        summary = {"blocks": blocks, "level_dbfs": float(level), "thinned": thinned}
        path = self._file("summary", ".npz")
        if path is not None:
            save_npz(path, blocks=blocks, level_dbfs=np.float64(level), thinned=thinned)
        self.__dict__["summary"] = summary
        return summary, mid

    @property
    def level_dbfs(self) -> float:
        return self.summary["level_dbfs"]

    @property
    def silent(self) -> bool:
        """The one silence rule (:func:`stemlab.dsp.silent_level`), on the level measured in the scan."""
        return silent_level(self.level_dbfs)

    @property
    def thinned(self) -> np.ndarray:
        """Every :data:`THIN`-th frame (all channels, float32): enough to estimate powers."""
        return self.summary["thinned"]

    @cached_property
    def envelopes(self) -> Envelopes:
        return Envelopes(self.audio, self.sr, blocks=self.summary["blocks"])

    @cached_property
    def codes(self) -> np.ndarray:
        """``uint8`` STFT dB codes (see :mod:`stemlab.view.spectrogram`)."""
        return cached_db_codes(mid_of(self.audio), self.sr, self._file("stft2048", ".npy"))

    def prepare(self, *, spectrogram: bool = True) -> "Track":
        """Compute (or load) all display data now, then release the audio's memory pages.

        What is missing is built from one chunked pass over the audio (:func:`~.envelope.scan`),
        whose mid channel also feeds the spectrogram.
        """
        codes_file = self._file("stft2048", ".npy")
        needs_codes = spectrogram and "codes" not in self.__dict__ and not (codes_file and os.path.exists(codes_file))
        summary_file = self._file("summary", ".npz")
        if "summary" not in self.__dict__ and (needs_codes or not (summary_file and os.path.exists(summary_file))):
            _, mid = self._scan()
            if needs_codes:
                self.codes = cached_db_codes(mid, self.sr, codes_file)
        _ = self.envelopes  # built now, while the audio is in memory
        if spectrogram:
            _ = self.codes
        release_pages(self.audio)
        return self

    def mp3(self) -> bytes:
        """The track as MP3 bytes, for players (encoded once)."""
        if "_mp3" not in self.__dict__:
            if self.encode is not None:
                self._mp3 = self.encode()
            else:
                from ..encode import mp3_bytes

                self._mp3 = mp3_bytes(self.audio, self.sr)
        return self._mp3

    def describe(self) -> dict:
        return {"name": self.name, "label": self.name, "kind": self.kind, "silent": self.silent}


def _read_summary(path) -> dict:
    with np.load(path) as stored:
        return {"blocks": stored["blocks"], "level_dbfs": float(stored["level_dbfs"]), "thinned": stored["thinned"]}


def mp3_all(tracks: list["Track"]) -> list[bytes]:
    """Every track's MP3 bytes; tracks with no file behind them are encoded in parallel processes."""
    from ..encode import encode_arrays

    pending = [t for t in tracks if t.encode is None and "_mp3" not in t.__dict__]
    for track, data in zip(pending, encode_arrays([(t.audio, t.sr) for t in pending])):
        track._mp3 = data
    return [t.mp3() for t in tracks]


def _stem_track(stem, kind: str) -> Track:
    return Track(stem.name, kind, stem.audio, stem.sr, label=stem.label, cache=stem.derived_path,
                 encode=stem.mp3_bytes)


def tracks_of(stemset, *, recombination=None) -> list[Track]:
    """The source (if any) and then every stem; given a
    :class:`~stemlab.analysis.check.Recombination` of the set, the source, the aligned stem sum
    and the residual (source minus that sum) instead of the stems."""
    tracks = [_stem_track(stemset.source, "source")] if stemset.source is not None else []
    if recombination is None:
        return tracks + [_stem_track(stem, "stem") for stem in stemset]
    parts = recombination
    return tracks + [Track("stem sum", "sum", parts.aligned_sum, stemset.sr, label="aligned, gained stem sum"),
                     Track("residual", "residual", parts.residual, stemset.sr, label="source - stem sum")]


def prepare_tracks(tracks: list[Track]) -> None:
    """:meth:`Track.prepare` every track, in parallel threads (FFTs and reductions release the GIL)."""
    with ThreadPoolExecutor(max_workers=min(len(tracks), os.cpu_count() or 2)) as workers:
        list(workers.map(Track.prepare, tracks))


def energy_matrix(tracks: list[Track]) -> list[list[float]]:
    """The ``energy`` trait of :class:`~stemlab.view.widget.StemView` for ``tracks``, estimated on
    every :data:`THIN`-th sample: the power of a weighted sum ``sum_i g_i x_i`` is ``g^T E g``."""
    return gram([t.thinned for t in tracks]).tolist()
