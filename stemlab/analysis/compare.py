"""Comparing stem sets: map them onto the finest groups of stems they share, align, then score.

>>> c = stemlab.compare(cqtai12, apiframe, reference=stemlab.demo_song())      # doctest: +SKIP
>>> c.table.head()                                                              # doctest: +SKIP
       set    stem  metric  value  silent
0  cqtai-12  vocals  si_sdr   35.9   False
>>> c.plot(); c.to_json()                                                       # doctest: +SKIP

Every set is resampled to one rate, aligned for lag (MP3 decoders disagree on the encoder delay)
and trimmed to a common length; the alignment applied is reported. Metrics:

==================  =========================================================================
``si_sdr``          scale-invariant SDR against the reference, dB
``si_sdr_improvement`` ``si_sdr`` minus the same for the reference's mix used as the estimate, dB
``sdr``             BSSEval v4 SDR (museval), median over 1 s frames, dB; ``sir``, ``sar`` too
``sdr_improvement`` ``sdr`` minus the same for the reference's mix used as the estimate, dB
``loudness_db``     the stem's RMS level in dBFS (``silent`` below -60 dBFS)
``leakage``         how much of a stem's energy a scaled copy of another stem of the same set
                    explains (the largest squared correlation with another stem, 0 to 1)
``agreement_si_sdr`` one set's stem scored against another set's (``set`` is ``A vs B``), dB
==================  =========================================================================

Silent references or estimates give NaN scores (never an exception, never an inf) and
``silent=True``; NaN is written as null in JSON.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import Settings
from ..errors import UsageError
from ..fetching import as_set
from ..rendering import Rendered
from ..taxonomy import common_groups, stems_in_group
from ..dsp import estimate_lag, fit_channels, gram, is_silent, rms_db, shift, sum_tracks
from .metrics import evaluate, si_sdr

__all__ = ["group_audio", "compare", "Comparison", "METRICS"]

METRICS = ("si_sdr", "si_sdr_improvement", "sdr", "sir", "sar", "sdr_improvement", "agreement_si_sdr",
           "loudness_db", "leakage")
SCORES = ("si_sdr", "si_sdr_improvement", "sdr", "sir", "sar", "sdr_improvement", "agreement_si_sdr")
MAX_RESAMPLE_RATIO = 8.0  # rates further apart than this are refused, not silently resampled


def group_audio(stemset, group: frozenset[str], *, length: int | None = None) -> np.ndarray:
    """The sum of ``stemset``'s stems that make up ``group`` (float32, ``(channels, length)``)."""
    return sum_tracks((stemset[name].audio for name in stems_in_group(stemset.names, group)), length=length)


# ------------------------------------------------------------------------------------ compare


@dataclass
class Comparison(Rendered):
    """What :func:`compare` found. ``table`` is tidy: one row per (set, stem, metric)."""

    _view = "stemlab.view.compare_view"

    table: "object"  # pandas.DataFrame with columns set, stem, metric, value, silent
    sets: list[dict]
    alignment: dict
    groups: dict[str, list[str]]
    reference: str | None
    sr: int
    frames: "object" = field(default=None, repr=False)  # DataFrame set, stem, metric, time, value
    audio: dict = field(default_factory=dict, repr=False)  # set label (and "reference") -> stem -> aligned audio

    def view(self, *, stem: str | None = None, a: str | None = None, b: str | None = None):
        """Listen and look: one stem group of two sets, A/B while playing (a notebook widget)."""
        return self._renderer().CompareView(self, stem=stem, a=a, b=b)

    def __repr__(self) -> str:
        reference = f", reference {self.reference}" if self.reference else ", no reference"
        return (f"<Comparison of {', '.join(s['name'] for s in self.sets)} on {', '.join(self.groups)}{reference}: "
                f"{len(self.table)} rows>")

    def pivot(self, metric: str = "si_sdr"):
        """A stems x sets table of one metric."""
        rows = self.table[self.table.metric == metric]
        return rows.pivot_table(index="stem", columns="set", values="value", sort=False, dropna=False)

    def scores(self):
        """One row per (set, stem), one column per metric, and ``silent``: the table made wide.

        >>> stemlab.compare(estimate, reference=truth, bss=False).scores()     # doctest: +SKIP
                set    stem  si_sdr  si_sdr_improvement  loudness_db  leakage  silent
        """
        wide = self.table.pivot_table(index=["set", "stem"], columns="metric", values="value", sort=False,
                                      dropna=False)
        silent = self.table.groupby(["set", "stem"], sort=False).silent.any()
        wide = wide[[m for m in METRICS if m in wide.columns]].assign(silent=silent).reset_index()
        wide.columns.name = None
        return wide

    def to_dict(self) -> dict:
        """The CLI's ``--json`` object (NaN as None)."""
        def clean(value):
            return None if isinstance(value, float) and math.isnan(value) else value

        rows = [{"set": r.set, "stem": r.stem, "metric": r.metric, "value": clean(float(r.value)),
                 "silent": bool(r.silent)} for r in self.table.itertuples()]
        return {"sets": self.sets, "alignment": self.alignment, "rows": rows}

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        text = json.dumps(self.to_dict(), allow_nan=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    def to_csv(self, path: str | os.PathLike | None = None) -> str:
        text = self.table.to_csv(index=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    def plot(self, ax=None, *, metric: str | None = None):
        """Per stem, the spread over 1-second frames of ``metric`` for every set (boxes), or bars
        for whole-signal metrics. Default: ``sdr`` with a reference, ``agreement_si_sdr`` without.
        Returns ``self`` (artists on ``ax_``, ``figure_``)."""
        return self._renderer().plot(self, ax=ax, metric=metric)


def _fit(audio: np.ndarray, channels: int) -> np.ndarray:
    """:func:`~stemlab.dsp.fit_channels`, as a contiguous array (it is summed and scored many times)."""
    return np.ascontiguousarray(fit_channels(audio, channels))


def _common_rate(sets) -> int:
    rates = sorted({s.sr for s in sets})
    if rates[-1] / rates[0] > MAX_RESAMPLE_RATIO:
        raise UsageError(f"the sets have sample rates {rates[0]} Hz and {rates[-1]} Hz, too far apart to compare; "
                         f"resample one of them first")
    return rates[-1]


def _labels(sets) -> list[str]:
    labels, seen = [], {}
    for s in sets:
        label = s.label
        seen[label] = seen.get(label, 0) + 1
        labels.append(label if seen[label] == 1 else f"{label}#{seen[label]}")
    return labels


def _frame_si_sdr(reference: np.ndarray, estimate: np.ndarray, window: int) -> np.ndarray:
    """SI-SDR of every ``window``-long frame (NaN where the reference frame is silent)."""
    count = reference.shape[1] // window
    values = np.full(count, np.nan)
    for k in range(count):
        values[k] = si_sdr(reference[:, k * window:(k + 1) * window], estimate[:, k * window:(k + 1) * window])
    return values


def compare(*sets, reference=None, window_s: float = 1.0, bss: bool = True, max_lag_s: float = 0.5,
            cache_dir: str | os.PathLike | None = None, settings=None) -> Comparison:
    """Compare stem sets, with or without a reference (true stems).

    Parameters
    ----------
    *sets : StemSet, folder or set id
        Any number of sets (one is enough with a reference).
    reference : StemSet, folder or set id, optional
        The true stems; adds ``si_sdr``, ``sdr``, ``sir``, ``sar`` and ``sdr_improvement``.
    window_s : float
        Frame length for framewise metrics (museval's default, 1 s).
    bss : bool
        Compute BSSEval v4 (``sdr``, ``sir``, ``sar``; slower) besides SI-SDR.
    max_lag_s : float
        How far apart (seconds) the sets may start and still be aligned.
    cache_dir, settings : optional
        Where sets named by id or folder are found and their derived data goes.

    Returns
    -------
    Comparison
    """
    from .check import check
    import pandas as pd

    if not sets:
        raise UsageError("compare() needs at least one stem set")
    settings = Settings.of(settings, cache_dir=cache_dir)
    estimates = [as_set(s, settings=settings, what="compare()") for s in sets]
    truth = as_set(reference, settings=settings, what="compare()") if reference is not None else None
    if truth is None and len(estimates) < 2:
        raise UsageError("compare() needs two sets, or one set and a reference")
    everything = [*estimates, *([truth] if truth is not None else [])]
    sr = truth.sr if truth is not None else _common_rate(everything)
    _common_rate(everything)
    resampled = [s.sr if s.sr != sr else None for s in everything]
    everything = [s if s.sr == sr else s.with_options(sr=sr) for s in everything]
    estimates, truth = everything[: len(estimates)], (everything[-1] if truth is not None else None)
    groups = common_groups(*(s.names for s in everything))
    if not groups:
        names = "; ".join(f"{s.label}: {', '.join(s.names)}" for s in everything)
        raise UsageError(f"these sets have no stems in common (only the whole mix): {names}")
    labels = _labels(estimates)

    # group sums, then alignment on the anchor (the reference, else the first set)
    audio = {i: {g: group_audio(s, members) for g, members in groups.items()} for i, s in enumerate(everything)}
    anchor = len(everything) - 1 if truth is not None else 0
    channels = max(a.shape[0] for parts in audio.values() for a in parts.values())
    totals = {i: sum(_fit(a, channels) for a in parts.values()) for i, parts in audio.items()}
    lags = {i: (0 if i == anchor else estimate_lag(totals[anchor], totals[i], max_lag=int(max_lag_s * sr),
                                                     excerpt=int(10 * sr))) for i in audio}
    length = min(t.shape[1] - max(lags[i], 0) for i, t in totals.items())
    for i, parts in audio.items():
        for g in parts:
            parts[g] = shift(_fit(parts[g], channels), lags[i], length)
    alignment = {label: {"lag_samples": lags[i], "length_samples": length, "sr": sr,
                         "resampled_from": resampled[i]} for i, label in enumerate(labels)}
    if truth is not None:
        alignment["reference"] = {"lag_samples": 0, "length_samples": length, "sr": sr,
                                  "resampled_from": resampled[anchor]}

    rows, frames = [], []
    window = max(1, int(round(window_s * sr)))

    def add(set_label, stem, metric, value, silent):
        rows.append({"set": set_label, "stem": stem, "metric": metric, "value": float(value), "silent": bool(silent)})

    for i, label in enumerate(labels):
        parts = audio[i]
        for g, share in zip(parts, _leakage(list(parts.values()))):
            a = parts[g]
            add(label, g, "loudness_db", max(rms_db(a), -200.0), is_silent(a))
            add(label, g, "leakage", share, is_silent(a))
    if truth is not None:
        reference_parts = audio[anchor]
        mixture = shift(_fit(np.asarray(truth.source.audio, dtype=np.float32), channels), 0, length) \
            if truth.source is not None else sum(reference_parts.values())
        baseline = {g: si_sdr(ref, mixture) for g, ref in reference_parts.items()}  # the mix as the estimate
        for i, label in enumerate(labels):
            for g, ref in reference_parts.items():
                score, silent = si_sdr(ref, audio[i][g]), is_silent(ref) or is_silent(audio[i][g])
                add(label, g, "si_sdr_improvement", score - baseline[g], silent)
                if not bss:
                    add(label, g, "si_sdr", score, silent)
            if bss:
                result = evaluate(reference_parts, audio[i], mixture=mixture, sr=sr, window_s=window_s,
                                  hop_s=window_s)
                for stem in result.stems:
                    silent = stem.reference_silent or stem.estimate_silent
                    for metric in ("si_sdr", "sdr", "sir", "sar", "sdr_improvement"):
                        add(label, stem.name, metric, getattr(stem, metric), silent)
                    for t, value in zip(stem.frames.start, stem.frames.sdr):
                        frames.append({"set": label, "stem": stem.name, "metric": "sdr", "time": t, "value": value})
            for g, ref in reference_parts.items():
                for k, value in enumerate(_frame_si_sdr(ref, audio[i][g], window)):
                    frames.append({"set": label, "stem": g, "metric": "si_sdr", "time": k * window_s, "value": value})
    for i, a_label in enumerate(labels):
        for j, b_label in enumerate(labels):
            if i == j:
                continue
            for g in groups:
                ref, est = audio[j][g], audio[i][g]
                add(f"{a_label} vs {b_label}", g, "agreement_si_sdr", si_sdr(ref, est), is_silent(ref) or is_silent(est))
                for k, value in enumerate(_frame_si_sdr(ref, est, window)):
                    frames.append({"set": f"{a_label} vs {b_label}", "stem": g, "metric": "agreement_si_sdr",
                                   "time": k * window_s, "value": value})

    described = []
    for label, s in zip(labels, estimates):
        report = check(s) if s.source is not None else None
        described.append({"name": label, "provider": s.provider, "job_id": s.job_id, "stems": s.names,
                          "folder": str(s.folder) if s.folder else None,
                          "recombines": None if report is None else report.ok,
                          "residual_db": None if report is None else round(report.residual_db, 2)})
    table = pd.DataFrame(rows, columns=["set", "stem", "metric", "value", "silent"])
    table.loc[table.silent & table.metric.isin(SCORES) & ~np.isfinite(table.value), "value"] = np.nan
    return Comparison(table=table, sets=described, alignment=alignment,
                      groups={g: sorted(m) for g, m in groups.items()}, reference=truth.label if truth else None,
                      sr=sr, frames=pd.DataFrame(frames, columns=["set", "stem", "metric", "time", "value"]),
                      audio={**{label: audio[i] for i, label in enumerate(labels)},
                             **({"reference": audio[anchor]} if truth is not None else {})})


def _leakage(parts: list[np.ndarray]) -> list[float]:
    """For each part, the largest share of its energy a scaled copy of another part explains: the
    largest squared correlation ``<a, b>^2 / (|a|^2 |b|^2)`` (0 when either is all zeros)."""
    products = gram(parts)
    energy = np.diag(products)
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = np.where(np.outer(energy, energy) > 0, products ** 2 / np.outer(energy, energy), 0.0)
    np.fill_diagonal(shares, 0.0)
    return [float(row.max(initial=0.0)) for row in shares]
