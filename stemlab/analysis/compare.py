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

Silent references or estimates give NaN scores (never an exception) and ``silent=True``; silence
is relative to each set's mix (:func:`stemlab.dsp.silence_threshold`). Identical signals score
``+inf`` with ``identical=True``; tables show "identical", plots leave them out. Both are written
as null in JSON, with their flags.
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
from ..dsp import (estimate_lag, fit_channels, gram, is_silent, lag_range, rms_db, shift, silence_threshold,
                   sum_tracks)
from .metrics import evaluate, si_sdr

__all__ = ["group_audio", "compare", "levels", "Comparison", "METRICS", "score_text", "as_text"]

METRICS = ("si_sdr", "si_sdr_improvement", "sdr", "sir", "sar", "sdr_improvement", "agreement_si_sdr",
           "loudness_db", "leakage")
SCORES = ("si_sdr", "si_sdr_improvement", "sdr", "sir", "sar", "sdr_improvement", "agreement_si_sdr")
MAX_RESAMPLE_RATIO = 8.0  # rates further apart than this are refused, not silently resampled


def group_audio(conformed, group: frozenset[str]) -> np.ndarray:
    """The sum of a conformed set's stems that make up ``group`` (float32, ``(channels, length)``)."""
    names = stems_in_group(list(conformed.stems), group)
    return sum_tracks((conformed.stems[name] for name in names), channels=conformed.channels, length=conformed.length)


def score_text(value: float, digits: int = 2, *, sign: bool = False, silent: str = "silent") -> str:
    """A score as every table shows it: "identical" for +inf (identical signals score +inf, see
    :mod:`stemlab.analysis.metrics`), ``silent`` for NaN, else the number in dB.

    >>> [score_text(v, 1) for v in (12.345, float("inf"), float("nan"))]
    ['12.3', 'identical', 'silent']
    >>> score_text(2.0, 1, sign=True), score_text(float("nan"), silent="")
    ('+2.0', '')
    """
    value = float(value)
    if value != value:
        return silent
    if value == math.inf:
        return "identical"
    return f"{value:{'+' if sign else ''}.{digits}f}"


def as_text(table, digits: int = 2):
    """Every cell of a table of scores as :func:`score_text`.

    >>> import pandas as pd
    >>> as_text(pd.DataFrame({"a": [1.234, float("nan"), float("inf")]})).a.tolist()
    ['1.23', 'silent', 'identical']
    """
    cell = lambda value: score_text(value, digits)  # noqa: E731
    return table.map(cell) if hasattr(table, "map") else table.applymap(cell)  # pandas < 2.1: applymap


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
    steps: dict = field(default_factory=dict)  # set label -> what conforming it did

    def view(self, *, stem: str | None = None, a: str | None = None, b: str | None = None):
        """Listen and look: one stem group of two sets, A/B while playing (a notebook widget)."""
        return self._renderer().CompareView(self, stem=stem, a=a, b=b)

    def __repr__(self) -> str:
        reference = f", reference {self.reference}" if self.reference else ", no reference"
        return (f"<Comparison of {', '.join(s['name'] for s in self.sets)} on {', '.join(self.groups)}{reference}: "
                f"{len(self.table)} rows>")

    def pivot(self, metric: str = "si_sdr", *, digits: int | None = None, both_directions: bool = False):
        """A stems x sets table of one metric; with ``digits``, as text (:func:`score_text`).

        ``agreement_si_sdr`` is symmetric, so it has one column per pair of sets ("A vs B", A
        first in the order given to :func:`compare`); ``both_directions=True`` adds "B vs A".

        >>> c.pivot("sdr", digits=1)                                  # doctest: +SKIP
        set          cqtai-12 cqtai-2
        vocals      identical    36.6
        """
        rows = self.table[self.table.metric == metric]
        if metric == "agreement_si_sdr" and not both_directions:
            rows = rows[rows.set.isin(self.pairs())]
        wide = rows.pivot_table(index="stem", columns="set", values="value", sort=False, dropna=False)
        if digits is None:
            return wide
        return as_text(wide, digits)

    def pairs(self, *, both_directions: bool = False) -> list[str]:
        """The ``set`` labels of the agreement rows: "A vs B" for A before B (and "B vs A")."""
        names = [s["name"] for s in self.sets]
        return [f"{a} vs {b}" for i, a in enumerate(names) for j, b in enumerate(names)
                if i < j or (both_directions and i > j)]

    def scores(self, *, digits: int | None = None):
        """One row per (set, stem), one column per metric, and ``silent`` and ``identical``: the table made wide.
        With ``digits``, the scores are text (:func:`score_text`: "identical", "silent").

        >>> stemlab.compare(estimate, reference=truth, bss=False).scores()     # doctest: +SKIP
                set    stem  si_sdr  si_sdr_improvement  loudness_db  leakage  silent
        """
        wide = self.table.pivot_table(index=["set", "stem"], columns="metric", values="value", sort=False,
                                      dropna=False)
        flags = self.table.groupby(["set", "stem"], sort=False)[["silent", "identical"]].any()
        wide = wide[[m for m in METRICS if m in wide.columns]].join(flags).reset_index()
        wide.columns.name = None
        if digits is not None:
            for metric in (m for m in SCORES if m in wide.columns):
                wide[metric] = [score_text(v, digits) for v in wide[metric]]
        return wide

    def to_dict(self) -> dict:
        """The CLI's ``--json`` object: NaN (silent) and +inf (identical) are written as null,
        with their flags."""
        def clean(value):
            return value if math.isfinite(value) else None

        rows = [{"set": r.set, "stem": r.stem, "metric": r.metric, "value": clean(float(r.value)),
                 "silent": bool(r.silent), "identical": bool(r.identical)} for r in self.table.itertuples()]
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


def _frame_si_sdr(reference: np.ndarray, estimate: np.ndarray, window: int, silence_db: float) -> np.ndarray:
    """SI-SDR of every ``window``-long frame (NaN where either frame is silent)."""
    count = reference.shape[1] // window
    values = np.full(count, np.nan)
    for k in range(count):
        values[k] = si_sdr(reference[:, k * window:(k + 1) * window], estimate[:, k * window:(k + 1) * window],
                           silence_db=silence_db)
    return values


def compare(*sets, reference=None, window_s: float = 1.0, bss: bool = True, max_lag_s: float | None = None,
            cache_dir: str | os.PathLike | None = None, settings=None) -> Comparison:
    """Compare stem sets, with or without a reference (true stems).

    Every set is conformed first (:meth:`~stemlab.stemset.StemSet.conform`: one rate, channel
    layout and length), resampled to one rate, aligned for lag against the reference (else the
    first set) and trimmed to a common length; what was done is in ``sets[i]["steps"]`` and
    ``alignment``.

    Parameters
    ----------
    *sets : StemSet, folder or set id
        Any number of sets (one is enough with a reference).
    reference : StemSet, folder or set id, optional
        The true stems; adds ``si_sdr``, ``si_sdr_improvement``, ``sdr``, ``sir``, ``sar`` and
        ``sdr_improvement``.
    window_s : float
        Frame length for framewise metrics (museval's default, 1 s).
    bss : bool
        Compute BSSEval v4 (``sdr``, ``sir``, ``sar``; slower) besides SI-SDR.
    max_lag_s : float, optional
        How far apart (seconds) the sets may start and still be aligned; default
        :func:`~stemlab.dsp.lag_range` of the material's duration.
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

    # group sums of the conformed sets, then alignment on the anchor (the reference, else the first set)
    conformed = [s.conform() for s in everything]
    audio = {i: {g: group_audio(c, members) for g, members in groups.items()} for i, c in enumerate(conformed)}
    anchor = len(everything) - 1 if truth is not None else 0
    channels = max(c.channels for c in conformed)
    totals = {i: sum_tracks(parts.values(), channels=channels) for i, parts in audio.items()}
    max_lag = int((lag_range(conformed[anchor].length / sr) if max_lag_s is None else max_lag_s) * sr)
    lags = {i: (0 if i == anchor else estimate_lag(totals[anchor], totals[i], max_lag=max_lag,
                                                     excerpt=int(10 * sr))) for i in audio}
    length = min(t.shape[1] - max(lags[i], 0) for i, t in totals.items())
    for i, parts in audio.items():
        for g in parts:
            parts[g] = shift(fit_channels(parts[g], channels), lags[i], length)
    alignment = {label: {"lag_samples": lags[i], "length_samples": length, "sr": sr,
                         "resampled_from": resampled[i]} for i, label in enumerate(labels)}
    if truth is not None:
        alignment["reference"] = {"lag_samples": 0, "length_samples": length, "sr": sr,
                                  "resampled_from": resampled[anchor]}
    # silence is relative to each set's mix (its source, else its stems' sum)
    thresholds = {i: silence_threshold(c.source if c.source is not None else totals[i]) for i, c in enumerate(conformed)}

    rows, frames = [], []
    window = max(1, int(round(window_s * sr)))

    def add(set_label, stem, metric, value, silent):
        value = float(value)
        rows.append({"set": set_label, "stem": stem, "metric": metric, "value": value, "silent": bool(silent),
                     "identical": value == np.inf})

    for i, label in enumerate(labels):
        parts = audio[i]
        for g, share in zip(parts, _leakage(list(parts.values()))):
            a = parts[g]
            quiet = is_silent(a, threshold_db=thresholds[i])
            add(label, g, "loudness_db", max(rms_db(a), -200.0), quiet)
            add(label, g, "leakage", share, quiet)
    if truth is not None:
        reference_parts = audio[anchor]
        reference_silence = thresholds[anchor]
        mixture = (shift(fit_channels(conformed[anchor].source, channels), 0, length)
                   if conformed[anchor].source is not None else sum_tracks(reference_parts.values()))
        baseline = {g: si_sdr(ref, mixture, silence_db=reference_silence) for g, ref in reference_parts.items()}
        for i, label in enumerate(labels):
            for g, ref in reference_parts.items():
                silent = is_silent(ref, threshold_db=reference_silence) or is_silent(audio[i][g],
                                                                                    threshold_db=reference_silence)
                score = float("nan") if silent else si_sdr(ref, audio[i][g], silence_db=reference_silence)
                add(label, g, "si_sdr_improvement", score - baseline[g], silent)
                if not bss:
                    add(label, g, "si_sdr", score, silent)
            if bss:
                result = evaluate(reference_parts, audio[i], mixture=mixture, sr=sr, window_s=window_s,
                                  hop_s=window_s, silence_db=reference_silence)
                for stem in result.stems:
                    silent = stem.reference_silent or stem.estimate_silent
                    for metric in ("si_sdr", "sdr", "sir", "sar", "sdr_improvement"):
                        add(label, stem.name, metric, getattr(stem, metric), silent)
                    for t, value in zip(stem.frames.start, stem.frames.sdr):
                        frames.append({"set": label, "stem": stem.name, "metric": "sdr", "time": t, "value": value})
            for g, ref in reference_parts.items():
                for k, value in enumerate(_frame_si_sdr(ref, audio[i][g], window, reference_silence)):
                    frames.append({"set": label, "stem": g, "metric": "si_sdr", "time": k * window_s, "value": value})
    for i, a_label in enumerate(labels):
        for j, b_label in enumerate(labels):
            if i == j:
                continue
            for g in groups:
                ref, est = audio[j][g], audio[i][g]
                silent = is_silent(ref, threshold_db=thresholds[j]) or is_silent(est, threshold_db=thresholds[j])
                add(f"{a_label} vs {b_label}", g, "agreement_si_sdr",
                    float("nan") if silent else si_sdr(ref, est, silence_db=thresholds[j]), silent)
                for k, value in enumerate(_frame_si_sdr(ref, est, window, thresholds[j])):
                    frames.append({"set": f"{a_label} vs {b_label}", "stem": g, "metric": "agreement_si_sdr",
                                   "time": k * window_s, "value": value})

    described = []
    for label, s, c in zip(labels, estimates, conformed):
        report = check(s) if s.source is not None else None
        described.append({"name": label, "provider": s.provider, "job_id": s.job_id, "stems": s.names,
                          "folder": str(s.folder) if s.folder else None,
                          "recombines": None if report is None else report.ok,
                          "residual_db": None if report is None else round(report.residual_db, 2),
                          "steps": _steps(c, channels)})
    table = pd.DataFrame(rows, columns=["set", "stem", "metric", "value", "silent", "identical"])
    table.loc[table.silent & table.metric.isin(SCORES), "value"] = np.nan
    return Comparison(table=table, sets=described, alignment=alignment,
                      groups={g: sorted(m) for g, m in groups.items()}, reference=truth.label if truth else None,
                      sr=sr, frames=pd.DataFrame(frames, columns=["set", "stem", "metric", "time", "value"]),
                      audio={**{label: audio[i] for i, label in enumerate(labels)},
                             **({"reference": audio[anchor]} if truth is not None else {})},
                      steps={label: _steps(c, channels) for label, c in zip(labels, conformed)})


def levels(stemset) -> list[dict]:
    """Each stem's ``loudness_db`` and ``leakage`` in one set, as :func:`compare` scores them per
    group: rows of ``stem, metric, value, silent`` (silence relative to the set's mix).

    >>> [(r["stem"], r["metric"]) for r in levels(stemlab.demo_song())][:2]     # doctest: +SKIP
    [('vocals', 'loudness_db'), ('vocals', 'leakage')]
    """
    conformed = stemset.conform()
    parts = dict(conformed.stems)
    mix = conformed.source if conformed.source is not None else sum_tracks(parts.values(), channels=conformed.channels)
    threshold = silence_threshold(mix)
    rows = []
    for (name, audio), share in zip(parts.items(), _leakage(list(parts.values()))):
        quiet = bool(is_silent(audio, threshold_db=threshold))
        rows += [{"stem": name, "metric": "loudness_db", "value": max(rms_db(audio), -200.0), "silent": quiet},
                 {"stem": name, "metric": "leakage", "value": share, "silent": quiet}]
    return rows


def _steps(conformed, channels: int) -> list[str]:
    """What was done to a set to compare it: its conform steps, and a channel fit to the others."""
    steps = [str(step) for step in conformed.steps]
    if conformed.channels != channels:
        how = "duplicated into" if conformed.channels == 1 else "averaged to mono and duplicated into"
        steps.append(f"all tracks: {conformed.channels} channel(s), {how} {channels} channels to match the other sets")
    return steps


def _leakage(parts: list[np.ndarray]) -> list[float]:
    """For each part, the largest share of its energy a scaled copy of another part explains: the
    largest squared correlation ``<a, b>^2 / (|a|^2 |b|^2)`` (0 when either is all zeros)."""
    products = gram(parts)
    energy = np.diag(products)
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = np.where(np.outer(energy, energy) > 0, products ** 2 / np.outer(energy, energy), 0.0)
    np.fill_diagonal(shares, 0.0)
    return [float(row.max(initial=0.0)) for row in shares]
