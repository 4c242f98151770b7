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

from ..errors import UsageError
from ..taxonomy import common_groups, stems_in_group
from .metrics import evaluate, is_silent, rms_db, si_sdr

__all__ = ["group_audio", "TruthScorer", "against_truth", "compare", "Comparison", "METRICS"]

METRICS = ("si_sdr", "sdr", "sir", "sar", "sdr_improvement", "agreement_si_sdr", "loudness_db", "leakage")
MAX_RESAMPLE_RATIO = 8.0  # rates further apart than this are refused, not silently resampled


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
            guess = _channels_like(group_audio(estimate, group, length=self.length), reference.shape[0])
            score = si_sdr(reference, guess)
            rows.append({"stem": name, "si_sdr": score, "si_sdr_mixture": baseline,
                         "si_sdr_improvement": score - baseline, "reference_silent": silent})
        return rows


def against_truth(truth, estimate) -> list[dict]:
    """:meth:`TruthScorer.score` of one set (see there)."""
    return TruthScorer(truth).score(estimate)


def _channels_like(audio: np.ndarray, channels: int) -> np.ndarray:
    if audio.shape[0] == channels:
        return audio
    mono = audio.mean(axis=0, keepdims=True)
    return np.ascontiguousarray(np.broadcast_to(mono, (channels, audio.shape[1])))


# ------------------------------------------------------------------------------------ compare


@dataclass
class Comparison:
    """What :func:`compare` found. ``table`` is tidy: one row per (set, stem, metric)."""

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
        from ..view.compare_view import CompareView

        return CompareView(self, stem=stem, a=a, b=b)

    def __repr__(self) -> str:
        reference = f", reference {self.reference}" if self.reference else ", no reference"
        return (f"<Comparison of {', '.join(s['name'] for s in self.sets)} on {', '.join(self.groups)}{reference}: "
                f"{len(self.table)} rows>")

    def pivot(self, metric: str = "si_sdr"):
        """A stems x sets table of one metric."""
        rows = self.table[self.table.metric == metric]
        return rows.pivot_table(index="stem", columns="set", values="value", sort=False, dropna=False)

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
        import matplotlib.pyplot as plt

        metric = metric or ("sdr" if self.reference else "agreement_si_sdr")
        if ax is None:
            _, ax = plt.subplots(figsize=(max(6, 1.3 * len(self.groups) * max(1, len(self.sets) // 2)), 3.5))
        frames = self.frames[self.frames.metric == metric] if self.frames is not None else None
        labels = sorted(set(self.table[self.table.metric == metric].set), key=str)
        stems = list(self.groups)
        width = 0.8 / max(1, len(labels))
        for i, label in enumerate(labels):
            positions = [k + (i - (len(labels) - 1) / 2) * width for k in range(len(stems))]
            if frames is not None and len(frames):
                data = [frames[(frames.set == label) & (frames.stem == s)].value.dropna().to_numpy() for s in stems]
                keep = [(p, d) for p, d in zip(positions, data) if len(d)]
                if keep:
                    ax.boxplot([d for _, d in keep], positions=[p for p, _ in keep], widths=width * 0.9,
                               patch_artist=True, boxprops={"facecolor": f"C{i}", "alpha": 0.6},
                               medianprops={"color": "k"}, showfliers=False)
            else:
                rows = self.table[(self.table.metric == metric) & (self.table.set == label)]
                values = [rows[rows.stem == s].value.mean() for s in stems]
                ax.bar(positions, values, width=width * 0.9, color=f"C{i}", alpha=0.8)
            ax.plot([], [], color=f"C{i}", lw=6, alpha=0.6, label=label)
        ax.set_xticks(range(len(stems)), stems)
        ax.set_ylabel(f"{metric} (dB)" if metric != "leakage" else "leakage (0..1)")
        ax.axhline(0, color="0.6", lw=0.6)
        ax.legend(fontsize=8, ncol=min(4, len(labels)))
        self.ax_, self.figure_ = ax, ax.figure
        return self

    def _repr_html_(self) -> str:
        parts = [f"<b>compare</b>: {len(self.sets)} sets, stems {', '.join(self.groups)}"
                 + (f", reference {self.reference}" if self.reference else ", no reference")]
        for metric in ("si_sdr", "sdr", "sdr_improvement", "agreement_si_sdr", "leakage", "loudness_db"):
            if (self.table.metric == metric).any():
                parts.append(f"<h4 style='margin:8px 0 2px'>{metric}</h4>" + self.pivot(metric).round(2).to_html(
                    na_rep="silent"))
        return "<div>" + "".join(parts) + "</div>"


def _resolve(x, cache_dir=None):
    from ..fetching import open_set
    from ..stemset import StemSet

    if isinstance(x, StemSet):
        return x
    if isinstance(x, (str, os.PathLike)):
        return open_set(str(x), cache_dir=cache_dir)
    raise UsageError(f"compare() takes stem sets, set folders or set ids, not {type(x).__name__}")


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


def compare(*sets, reference=None, window_s: float = 1.0, bss: bool = True, cache_dir: str | None = None,
            max_lag_s: float = 0.5) -> Comparison:
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

    Returns
    -------
    Comparison
    """
    from .check import _shift, check, estimate_lag
    import pandas as pd

    if not sets:
        raise UsageError("compare() needs at least one stem set")
    estimates = [_resolve(s, cache_dir) for s in sets]
    truth = _resolve(reference, cache_dir) if reference is not None else None
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
    totals = {i: sum(_channels_like(a, channels) for a in parts.values()) for i, parts in audio.items()}
    lags = {i: (0 if i == anchor else estimate_lag(totals[anchor], totals[i], max_lag=int(max_lag_s * sr),
                                                     excerpt=int(10 * sr))) for i in audio}
    length = min(t.shape[1] - max(lags[i], 0) for i, t in totals.items())
    for i, parts in audio.items():
        for g in parts:
            parts[g] = _shift(_channels_like(parts[g], channels), lags[i], length)
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
        for g, a in parts.items():
            add(label, g, "loudness_db", max(rms_db(a), -200.0), is_silent(a))
            others = [b for h, b in parts.items() if h != g]
            add(label, g, "leakage", max((_explained(a, b) for b in others), default=0.0), is_silent(a))
    if truth is not None:
        reference_parts = audio[anchor]
        mixture = _shift(_channels_like(np.asarray(truth.source.audio, dtype=np.float32), channels), 0, length) \
            if truth.source is not None else sum(reference_parts.values())
        for i, label in enumerate(labels):
            if bss:
                result = evaluate(reference_parts, audio[i], mixture=mixture, sr=sr, window_seconds=window_s,
                                  hop_seconds=window_s)
                for stem in result.stems:
                    silent = stem.reference_silent or stem.estimate_silent
                    for metric in ("si_sdr", "sdr", "sir", "sar", "sdr_improvement"):
                        add(label, stem.name, metric, getattr(stem, metric), silent)
                    for t, value in zip(stem.frames.start, stem.frames.sdr):
                        frames.append({"set": label, "stem": stem.name, "metric": "sdr", "time": t, "value": value})
            else:
                for g, ref in reference_parts.items():
                    add(label, g, "si_sdr", si_sdr(ref, audio[i][g]), is_silent(ref) or is_silent(audio[i][g]))
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
    table.loc[table.silent & table.metric.isin(["si_sdr", "sdr", "sir", "sar", "sdr_improvement",
                                                "agreement_si_sdr"]) & ~np.isfinite(table.value), "value"] = np.nan
    return Comparison(table=table, sets=described, alignment=alignment,
                      groups={g: sorted(m) for g, m in groups.items()}, reference=truth.label if truth else None,
                      sr=sr, frames=pd.DataFrame(frames, columns=["set", "stem", "metric", "time", "value"]),
                      audio={**{label: audio[i] for i, label in enumerate(labels)},
                             **({"reference": audio[anchor]} if truth is not None else {})})


def _explained(a: np.ndarray, b: np.ndarray) -> float:
    """The share of ``a``'s energy a scaled copy of ``b`` explains: the squared correlation."""
    a64, b64 = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    denominator = float(a64 @ a64) * float(b64 @ b64)
    return float((a64 @ b64) ** 2 / denominator) if denominator > 0 else 0.0
