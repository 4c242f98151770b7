"""What an export writes: every track on one rate, layout and length, starting at sample 0 of
the song, and the MUSDB18 grouping of a set's stems.

**Placing stems.** :class:`Placement` starts from :meth:`StemSet.conform` (one rate, channel
layout and length). A stem that starts late (or early) against the source is moved into place:
its lag is estimated (:func:`stemlab.dsp.estimate_lag`) where the stem is loudest, against its
own part of the source (the source minus the other stems), and the move is kept only when it
makes the source minus the stem sum at least 1 dB smaller (so a stem in place stays where it
is); a set without a source has nothing to place its stems against and is written as it is.

**MUSDB18's four stems.** ``vocals`` = vocals + backing vocals (:data:`stemlab.taxonomy.GROUPS`),
``drums`` = drums + percussion, ``bass``, ``other`` = everything else. MUSDB18 defines its
stems as "the drums, the bass, the rest of the accompaniment, the vocals", without naming
percussion; stemlab reads percussion as part of the drums, as separators trained on MUSDB18 (Demucs,
Open-Unmix) deliver it.

>>> musdb_groups(["vocals", "backing_vocals", "drums", "percussion", "bass", "guitar", "keyboard"])
{'drums': ['drums', 'percussion'], 'bass': ['bass'], 'other': ['guitar', 'keyboard'], 'vocals': ['vocals', 'backing_vocals']}
>>> musdb_groups(["drums", "bass", "other", "vocals"])["other"]
['other']
>>> musdb_groups(["vocals", "instrumental"])
Traceback (most recent call last):
...
stemlab.errors.UsageError: this set cannot be exported as MUSDB18 (drums, bass, other, vocals): it has no drums and no bass stem (its instrumental holds them together with the rest); export it as a folder (format 'folder') instead
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from ..dsp import (estimate_lag, fit_channels, lag_range, loudest_center, products, rms_db, shift, silence_threshold,
                   silent_level, sum_tracks)
from ..errors import UsageError
from ..taxonomy import GROUPS, TWELVE_STEMS, coverage

__all__ = ["MUSDB_STEMS", "MUSDB_GROUPS", "musdb_groups", "Placement"]

#: MUSDB18's stems, in the order of a STEMS file's streams after the mixture
MUSDB_STEMS = ("drums", "bass", "other", "vocals")
#: which of the 12 fine stems each MUSDB18 stem holds
MUSDB_GROUPS = {
    "drums": ("drums", "percussion"),
    "bass": ("bass",),
    "other": tuple(n for n in TWELVE_STEMS if n not in ("vocals", "backing_vocals", "drums", "percussion", "bass")),
    "vocals": tuple(GROUPS["vocals"]),
}
#: a move must make the residual (source minus stem sum) at least this much smaller to be kept
IMPROVE_DB = 1.0
#: at most this many rounds over the stems (a round that moves nothing ends the search)
PASSES = 3
#: lags up to this many samples are also searched at the full rate (the most
#: :func:`stemlab.dsp.estimate_lag` searches without block means)
NEAR = 2048
#: the excerpt a stem's lag is estimated on (seconds), around its loudest second
EXCERPT_S = 10.0


def musdb_groups(names: Iterable[str]) -> dict[str, list[str]]:
    """The set's stems that make up each MUSDB18 stem: ``{"drums": [...], "bass": [...],
    "other": [...], "vocals": [...]}`` (``other`` may be empty: silent). Each stem goes to the
    MUSDB18 stem its coverage (:func:`stemlab.taxonomy.coverage`) falls in; a set's ``drums``
    covers percussion when the set has no percussion stem, as its ``vocals`` cover backing
    vocals; a stem nothing comparable covers (``unknown_*``) is part of ``other``.

    Raises :class:`~stemlab.errors.UsageError`, naming what is missing, when a set has no
    stem for the drums, the bass or the vocals, or a stem that holds parts of two of them.
    """
    names = list(names)
    covers = {name: set(covered) for name, covered in coverage(names).items()}
    if "drums" in names and "percussion" not in names:
        for name, covered in covers.items():
            if "percussion" in covered:
                covered.discard("percussion")
        covers["drums"].add("percussion")
    groups: dict[str, list[str]] = {group: [] for group in MUSDB_STEMS}
    straddling: dict[str, list[str]] = {}
    for name in names:
        hit = [group for group in MUSDB_STEMS if covers[name] & set(MUSDB_GROUPS[group])] or ["other"]
        if len(hit) > 1:
            straddling[name] = hit
        else:
            groups[hit[0]].append(name)
    missing = [group for group in ("drums", "bass", "vocals") if not groups[group]]
    if missing or straddling:
        what = (f"it has no {' and no '.join(missing)} stem" if missing else
                f"its {', '.join(straddling)} holds parts of {', '.join(next(iter(straddling.values())))}")
        if missing and straddling:
            holders = ", ".join(straddling)
            what += f" (its {holders} holds {'them' if len(missing) > 1 else 'it'} together with the rest)"
        raise UsageError(f"this set cannot be exported as MUSDB18 ({', '.join(MUSDB_STEMS)}): {what}; export it as a "
                         f"folder (format 'folder') instead")
    return groups


def _candidates(reference: np.ndarray, signal: np.ndarray, *, max_lag: int, excerpt: int, center: int) -> set[int]:
    """Lags that may place ``signal`` on ``reference``: the best over the whole range, that one
    refined at the full rate, and the best within :data:`NEAR` samples. (A long range is searched
    on block means first, and on a sustained tone, which correlates almost as well a pitch period
    away, that can land a period off. The caller keeps whichever leaves the least residual.)"""
    far = estimate_lag(reference, signal, max_lag=max_lag, excerpt=excerpt, center=center)
    found = {far}
    if max_lag > NEAR:
        found.add(estimate_lag(reference, signal, max_lag=NEAR, excerpt=excerpt, center=center))
        if abs(far) > NEAR // 2:
            moved = shift(signal, far, signal.shape[1])
            found.add(far + estimate_lag(reference, moved, max_lag=NEAR // 2, excerpt=excerpt, center=center))
    return found - {0}


class Placement:
    """A set's tracks as an export writes them: ``(channels, length)`` float32 at ``sr``, every
    stem starting at sample 0 of the song.

    ``shifts[name]`` is how many samples a stem was moved earlier (negative: later) because it
    started late (early) against the source; ``steps`` what conforming did. ``channels`` is the
    set's layout unless asked otherwise (MUSDB18 and STEMS files are stereo).
    """

    def __init__(self, stemset, *, channels: int | None = None):
        self.stemset = stemset
        self.conformed = conformed = stemset.conform()
        self.sr, self.length = conformed.sr, conformed.length
        self.channels = int(channels or conformed.channels)
        self.names = list(conformed.stems)
        self.steps = conformed.steps
        self.shifts = (self._find_shifts() if conformed.source is not None else {name: 0 for name in self.names})

    @property
    def has_source(self) -> bool:
        return self.conformed.source is not None

    def _moved(self, name: str, lag: int, channels: int) -> np.ndarray:
        """The stem's own decoded audio (not trimmed yet) moved ``lag`` samples earlier."""
        return fit_channels(shift(self.stemset[name].audio, lag, self.length), channels)

    def _find_shifts(self) -> dict[str, int]:
        conformed = self.conformed
        source, sr, n, channels = conformed.source, conformed.sr, conformed.length, conformed.channels
        threshold = silence_threshold(source)
        total = sum_tracks(conformed.stems.values(), channels=channels, length=n)
        residual = np.subtract(source, total, dtype=np.float32)
        del total
        energy = products(residual, residual)[0]
        max_lag = int(lag_range(n / sr) * sr)
        # the excerpt leaves max_lag samples on both sides, so that early stems are found as late ones are
        max_lag = min(max_lag, n // 4)
        excerpt = min(int(EXCERPT_S * sr), n - 2 * max_lag)
        shifts = {name: 0 for name in self.names}
        if max_lag < 1 or excerpt < 64:  # too short to say
            return shifts
        placed = dict(conformed.stems)  # each stem where it is now
        audible = [name for name, audio in placed.items() if not silent_level(rms_db(audio), threshold)]
        half = excerpt // 2 + max_lag
        for _ in range(PASSES):  # a move too small beside another stem's error is kept once that one is fixed
            moved_any = False
            for name in audible:
                audio = placed[name]
                if energy <= 0:
                    break
                center = int(np.clip(loudest_center(audio, sr), half, max(half, n - half)))
                lo, hi = max(0, center - half), min(n, center + half)
                own = residual[:, lo:hi] + audio[:, lo:hi]  # its own part of the source, if the others are in place
                best, best_energy, best_audio = 0, energy, None
                for lag in _candidates(own, audio[:, lo:hi], max_lag=max_lag, excerpt=excerpt, center=center - lo):
                    candidate = self._moved(name, shifts[name] + lag, channels)
                    change = np.subtract(audio, candidate, dtype=np.float32)
                    _, cross, extra = products(residual, change)
                    moved_energy = energy + 2 * cross + extra  # the residual with the stem moved: residual + change
                    if moved_energy < best_energy:
                        best, best_energy, best_audio = lag, moved_energy, candidate
                if best and best_energy < energy * 10 ** (-IMPROVE_DB / 10):
                    residual += audio
                    residual -= best_audio
                    placed[name], shifts[name], energy = best_audio, shifts[name] + int(best), best_energy
                    moved_any = True
            if not moved_any:
                break
        return shifts

    def stem(self, name: str) -> np.ndarray:
        """One stem, in place (moved if it started late or early), in ``channels`` channels."""
        lag = self.shifts.get(name, 0)
        if lag:
            return self._moved(name, lag, self.channels)
        return fit_channels(self.conformed.stems[name], self.channels)

    def group(self, names: Iterable[str]) -> np.ndarray:
        """The sum of some stems, in place (silence for none)."""
        return sum_tracks([self.stem(name) for name in names], channels=self.channels, length=self.length)

    def mixture(self) -> np.ndarray:
        """The source, or the sum of the stems in place when there is none."""
        if self.conformed.source is not None:
            return fit_channels(self.conformed.source, self.channels)
        return self.group(self.names)

    def shift_notes(self) -> list[str]:
        """The moves, in words."""
        notes = []
        for name, lag in self.shifts.items():
            if lag:
                notes.append(f"{name} started {abs(lag):,} samples ({1000 * abs(lag) / self.sr:.1f} ms) "
                             f"{'late' if lag > 0 else 'early'} against the source: moved {abs(lag):,} samples "
                             f"{'earlier' if lag > 0 else 'later'}")
        return notes
