"""Comparing stem sets: map them onto the finest groups of stems they share, then score.

>>> rows = against_truth(stemlab.demo_song(), stemlab.separate(stemlab.demo_song(), method="hpss"))  # doctest: +SKIP
>>> [(r["stem"], round(r["si_sdr_improvement"], 1)) for r in rows]                                    # doctest: +SKIP
[('drums', 5.2), ('other', 4.1)]
"""

from __future__ import annotations

import numpy as np

from ..taxonomy import common_groups, stems_in_group
from .metrics import is_silent, si_sdr

__all__ = ["group_audio", "TruthScorer", "against_truth"]


def group_audio(stemset, group: frozenset[str], *, length: int | None = None) -> np.ndarray:
    """The sum of ``stemset``'s stems that make up ``group`` (float32, ``(channels, length)``)."""
    names = stems_in_group(stemset.names, group)
    length = length or max(stemset[n].audio.shape[1] for n in names)
    channels = max(stemset[n].audio.shape[0] for n in names)
    total = np.zeros((channels, length), dtype=np.float32)
    for name in names:
        audio = stemset[name].audio
        n = min(length, audio.shape[1])
        total[:, :n] += audio[:, :n]
    return total


class TruthScorer:
    """Scores stem sets against the true stems of a song; group sums and the mixture's own
    scores are computed once and reused for every set scored.

    >>> scorer = TruthScorer(stemlab.demo_song())                        # doctest: +SKIP
    >>> scorer.score(stemlab.separate(stemlab.demo_song(), method="nmf"))  # doctest: +SKIP
    """

    def __init__(self, truth):
        self.truth = truth
        self.length = truth.source.audio.shape[1]
        self._references: dict[frozenset[str], tuple[np.ndarray, float, bool]] = {}

    def _reference(self, group: frozenset[str]) -> tuple[np.ndarray, float, bool]:
        if group not in self._references:
            reference = group_audio(self.truth, group, length=self.length)
            mixture = np.asarray(self.truth.source.audio, dtype=np.float32)
            self._references[group] = (reference, si_sdr(reference, mixture), bool(is_silent(reference)))
        return self._references[group]

    def score(self, estimate) -> list[dict]:
        """SI-SDR of every stem group ``estimate`` shares with the true stems, and its improvement
        over the mixture (the truth's source) used as the estimate.

        Rows ``{"stem", "si_sdr", "si_sdr_mixture", "si_sdr_improvement", "reference_silent"}``; a
        silent true group gets NaN scores and ``reference_silent=True``.
        """
        rows = []
        for name, group in common_groups(self.truth.names, estimate.names).items():
            reference, baseline, silent = self._reference(group)
            guess = group_audio(estimate, group, length=self.length)
            if guess.shape[0] != reference.shape[0]:
                guess = np.broadcast_to(guess.mean(axis=0, keepdims=True), reference.shape)
            score = si_sdr(reference, guess)
            rows.append({"stem": name, "si_sdr": score, "si_sdr_mixture": baseline,
                         "si_sdr_improvement": score - baseline, "reference_silent": silent})
        return rows


def against_truth(truth, estimate) -> list[dict]:
    """:meth:`TruthScorer.score` of one set (see there)."""
    return TruthScorer(truth).score(estimate)
