"""Paired statistics of a provider study: how much better one provider scores than another, song by song.

Each song is scored by every provider, so providers are compared by their paired differences
(``value(a) - value(b)`` on the same song), and the uncertainty of the mean difference is a
percentile bootstrap interval, seeded so that it is reproducible.

>>> import pandas as pd
>>> results = pd.DataFrame({"song": ["s1", "s1", "s2", "s2"], "provider": ["apiframe", "cqtai"] * 2,
...                         "stem": "vocals", "metric": "si_sdr", "value": [10.0, 11.0, 12.0, 15.0],
...                         "silent": False})
>>> summary = paired_summary(results)
>>> summary[["metric", "stem", "a", "b", "n", "mean_diff", "ci_low", "ci_high", "sd_diff"]].round(2)
   metric    stem         a      b  n  mean_diff  ci_low  ci_high  sd_diff
0  si_sdr  vocals  apiframe  cqtai  2       -2.0    -3.0     -1.0     1.41
>>> songs_needed(summary.sd_diff[0], effect_db=0.5)    # songs to tell 0.5 dB apart at this spread
65

The results table is the study's (``results.parquet``: song, provider, stem, metric, value,
silent, ...); the summary is its ``summary.csv``.
"""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import UsageError

__all__ = ["bootstrap_mean_ci", "paired_summary", "songs_needed", "SUMMARY_COLUMNS"]

SUMMARY_COLUMNS = ("metric", "stem", "a", "b", "n", "mean_a", "mean_b", "mean_diff", "ci_low", "ci_high", "sd_diff",
                   "confidence", "resamples")
NOT_SUMMARIZED = ("agreement_si_sdr",)  # agreement is itself a pair of sets
CHUNK = 1 << 22                          # resampled values held at once (32 MB of indices)


def bootstrap_mean_ci(diffs, *, confidence: float = 0.95, resamples: int = 10_000,
                      seed: int = 0) -> tuple[float, float]:
    """The percentile bootstrap interval of the mean of paired differences.

    ``resamples`` means of ``len(diffs)`` values drawn with replacement (a
    :func:`numpy.random.default_rng` of ``seed``); the interval is their ``(1 - confidence) / 2``
    and ``(1 + confidence) / 2`` quantiles. A sample without spread (one song) gives a zero-width
    interval.

    >>> bootstrap_mean_ci([-1.0, -3.0])
    (-3.0, -1.0)
    >>> bootstrap_mean_ci([2.5])
    (2.5, 2.5)
    """
    diffs = np.asarray(diffs, dtype=float)
    if diffs.ndim != 1 or diffs.size == 0:
        raise UsageError(f"bootstrap_mean_ci() needs a non-empty 1-D sample, got shape {diffs.shape}")
    if not np.isfinite(diffs).all():
        raise UsageError("bootstrap_mean_ci() needs finite differences: drop NaN and inf first")
    if not 0 < confidence < 1:
        raise UsageError(f"confidence must be between 0 and 1, got {confidence}")
    if int(resamples) != resamples or resamples < 1:
        raise UsageError(f"resamples must be a positive whole number, got {resamples}")
    if np.ptp(diffs) == 0:
        mean = float(diffs.mean())
        return mean, mean
    rng = np.random.default_rng(seed)
    n, resamples = diffs.size, int(resamples)
    step = max(1, CHUNK // n)
    means = np.concatenate([diffs[rng.integers(0, n, size=(min(step, resamples - start), n))].mean(axis=1)
                            for start in range(0, resamples, step)])
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def paired_summary(results: pd.DataFrame, *, confidence: float = 0.95, resamples: int = 10_000,
                   seed: int = 0) -> pd.DataFrame:
    """The study's summary: per metric, stem and pair of providers ``a < b`` (alphabetically),
    the mean paired difference ``value(a) - value(b)`` with its bootstrap interval.

    Only songs where both providers have a finite, non-silent value count (``n`` of them); pairs
    with none are left out. ``agreement_si_sdr`` and agreement rows (provider ``"x vs y"``) are
    ignored. ``sd_diff`` is the sample standard deviation of the differences (NaN for one song).
    Every row is bootstrapped with the same ``seed``, so a row does not change when other
    providers or metrics are added.

    >>> paired_summary(pd.DataFrame()).columns.tolist()[:5]
    ['metric', 'stem', 'a', 'b', 'n']
    """
    if len(results) == 0:
        return _frame([])
    missing = [c for c in ("song", "provider", "stem", "metric", "value", "silent") if c not in results.columns]
    if missing:
        raise UsageError(f"paired_summary() needs the study's results table; these columns are missing: "
                         f"{', '.join(missing)}")
    rows = results[~results.metric.isin(NOT_SUMMARIZED) & ~results.provider.str.contains(" vs ", regex=False)]
    repeated = rows[rows.duplicated(["song", "provider", "stem", "metric"], keep=False)]
    if len(repeated):
        first = repeated.iloc[0]
        raise UsageError(f"the results have several rows for one provider, song, stem and metric ({first.provider}, "
                         f"{first.song}, {first.stem}, {first.metric}): each must have one")
    usable = rows[np.isfinite(rows.value.astype(float)) & ~rows.silent.astype(bool)]
    wide = usable.pivot(index=["metric", "stem", "song"], columns="provider", values="value")
    summary = []
    for (metric, stem), table in wide.groupby(level=["metric", "stem"], sort=True):
        for a, b in combinations(sorted(table.columns[table.notna().any()]), 2):
            both = table[[a, b]].dropna()
            if both.empty:
                continue
            diffs = (both[a] - both[b]).to_numpy(float)
            low, high = bootstrap_mean_ci(diffs, confidence=confidence, resamples=resamples, seed=seed)
            summary.append((metric, stem, a, b, len(diffs), both[a].mean(), both[b].mean(), diffs.mean(), low, high,
                            diffs.std(ddof=1) if len(diffs) > 1 else math.nan, confidence, resamples))
    return _frame(summary).sort_values(["metric", "stem", "a", "b"], ignore_index=True)


def _frame(rows: list[tuple]) -> pd.DataFrame:
    floats = {c: "float64" for c in SUMMARY_COLUMNS[5:12]}
    texts = {c: str for c in SUMMARY_COLUMNS[:4]}
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS)).astype({**texts, "n": "int64", "resamples": "int64",
                                                                     **floats})


def songs_needed(sd_diff: float, *, effect_db: float = 0.5, alpha: float = 0.05, power: float = 0.8) -> int:
    """How many songs a two-sided paired t-test needs to detect a mean difference of ``effect_db``
    when the differences spread by ``sd_diff``: the smallest ``n >= 2`` whose power (noncentral
    t, ``n - 1`` degrees of freedom, noncentrality ``effect_db / sd_diff * sqrt(n)``) reaches
    ``power``.

    >>> songs_needed(1.0, effect_db=0.5), songs_needed(1.0, effect_db=1.0), songs_needed(1.0, power=0.9)
    (34, 10, 44)
    """
    for name, value in (("sd_diff", sd_diff), ("effect_db", effect_db)):
        if not (isinstance(value, (int, float, np.number)) and math.isfinite(value) and value > 0):
            raise UsageError(f"{name} must be a positive number, got {value!r}")
    for name, value in (("alpha", alpha), ("power", power)):
        if not (isinstance(value, (int, float, np.number)) and 0 < value < 1):
            raise UsageError(f"{name} must be between 0 and 1, got {value!r}")

    def enough(n: int) -> bool:
        df, shift = n - 1, effect_db / sd_diff * math.sqrt(n)
        critical = stats.t.ppf(1 - alpha / 2, df)
        return stats.nct.sf(critical, df, shift) + stats.nct.cdf(-critical, df, shift) >= power

    low, high = 1, 2  # the power grows with n: double until it is enough, then halve the gap
    while not enough(high):
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high
