"""``check``: do a set's stems recombine to its source, and if not, which stem is to blame?

The set is conformed first (one rate, layout and length; :meth:`StemSet.conform`), then measured
against the source:

* each stem's **duration** against the source's (``tolerance_s``, default 0.05 s: MP3 framing
  alone can add up to ~26 ms at 44.1 kHz, so 50 ms separates framing from a truly short or long
  stem), and against the duration the provider stated, when it stated one;
* the **stem sum**: its lag (the largest absolute cross-correlation, searched over a range that
  grows with the material), the least-squares gain that maps it onto the source, and the
  **residual** (source minus the aligned, gained sum) in dB relative to the source;
* **each stem** on its own: its least-squares gain in the source (fitted jointly with every other
  stem: ``source ≈ Σ gᵢ · stemᵢ``), whose sign is its polarity, and, when the set does not
  recombine, its own lag (each stem correlated with the source minus the other stems).

From these it names the culprit: the stem that is late or early, inverted, too loud or too quiet.
When every stem is off by the same gain it says so of the stems together ("the stems are 6.0 dB
quieter than the source"). When, after fitting every stem, the residual still holds a large share
of the source, a part seems to be missing (a provider set whose manifest lists fewer stems than
the provider's documented split names them). When the residual looks like what a limiter or
clipping leaves (the sum peaks above the source's ceiling, and the residual follows the sum), it
says the mix was limited or clipped after summing, rather than blaming a stem.

A silent stem is fine (reported, never a failure): silent means more than 60 dB below the
source's level (:func:`stemlab.dsp.silence_threshold`). The set passes when nothing is named.

>>> report = check(stemset)          # doctest: +SKIP
>>> report.ok, report.lag_samples, round(report.residual_db, 1)          # doctest: +SKIP
(True, 0, -31.2)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ..config import Settings
from ..conform import Step
from ..dsp import (estimate_lag, gram, lag_range, loudest_center, rms_db, shift, silence_threshold, silent_level,
                   sum_tracks)
from ..errors import UsageError
from ..fetching import as_set
from ..rendering import Rendered
from ..stemset import StemSet

__all__ = ["check", "CheckReport", "StemCheck", "recombination", "Recombination"]

#: A stem quieter than this in the source (dB relative to the source's energy) is too quiet for its
#: gain and lag to be judged: they are reported, not blamed.
JUDGE_BELOW_DB = -40.0
#: After fitting every stem, a residual holding more than this share of the source's energy means a
#: part seems to be missing (-10 dB: a tenth).
MISSING_SHARE = 0.1


@dataclass(frozen=True)
class StemCheck:
    """One stem's row of a :class:`CheckReport`.

    ``duration`` is the file's own length in seconds at its ``native_sr``; ``gain`` is its
    least-squares gain in the source (negative: inverted polarity) and ``lag_samples`` its own
    lag (positive: late), both at the set's rate; ``share_db`` is its energy relative to the
    source's. ``verdict`` is ``"ok"``, ``"silent"``, or what is wrong, in a few words.
    """

    name: str
    duration: float
    delta_s: float
    ok: bool
    silent: bool
    level_dbfs: float
    stated_duration: float | None = None
    native_sr: int | None = None
    gain: float = 1.0
    lag_samples: int = 0
    share_db: float = 0.0
    verdict: str = "ok"

    @property
    def gain_db(self) -> float:
        return float(20 * np.log10(abs(self.gain))) if self.gain else float("-inf")

    @property
    def polarity(self) -> int:
        return -1 if self.gain < 0 else 1


@dataclass(frozen=True)
class CheckReport(Rendered):
    """What :func:`check` found. Compute once, look many times: ``.plot()``, notebook repr, ``.to_dict()``.

    ``lag_samples``, ``gain`` and ``residual_db`` describe the stem sum as a whole;
    ``fitted_residual_db`` is what remains after fitting each stem's own gain and lag;
    ``culprits`` names the stems blamed; ``missing`` the stems of the provider's documented split
    that the set lacks; ``limited`` whether the mix looks limited or clipped after summing;
    ``steps`` what was done to conform the set.
    """

    _view = "stemlab.view.check_view"

    ok: bool
    sr: int
    source_duration: float
    lag_samples: int
    gain: float
    residual_db: float
    stems: tuple[StemCheck, ...]
    problems: tuple[str, ...] = ()
    tolerances: dict = field(default_factory=dict)
    fitted_residual_db: float = float("nan")
    culprits: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    limited: bool = False
    steps: tuple[Step, ...] = ()

    @property
    def lag_s(self) -> float:
        return self.lag_samples / self.sr

    @property
    def gain_db(self) -> float:
        return float(20 * np.log10(abs(self.gain))) if self.gain else float("-inf")

    @property
    def level_text(self) -> str:
        """The stem sum's level against the source, in words that cannot be read backwards."""
        error = _db(self.gain)
        if abs(error) < 0.05:
            return "the stems match the source's level"
        return f"the stems are {_describe_gain(error)} than the source"

    def to_dict(self) -> dict:
        """The CLI's ``check --json`` object. The fields of stemlab 0.1 keep their meaning; the
        per-stem ``lag_samples``, ``gain_db``, ``polarity``, ``verdict`` and the top-level
        ``culprits``, ``missing``, ``limited``, ``fitted_residual_db`` and ``steps`` are new."""
        return {
            "ok": self.ok,
            "source_duration": round(self.source_duration, 6),
            "lag_samples": self.lag_samples,
            "gain": round(self.gain, 6),
            "residual_db": _finite(self.residual_db),
            "stems": [{"name": s.name, "duration": round(s.duration, 6), "delta_s": round(s.delta_s, 6),
                       "ok": s.ok, "silent": s.silent, "native_sr": s.native_sr, "lag_samples": s.lag_samples,
                       "gain_db": _finite(s.gain_db), "polarity": s.polarity, "verdict": s.verdict}
                      for s in self.stems],
            "problems": list(self.problems),
            "fitted_residual_db": _finite(self.fitted_residual_db),
            "culprits": list(self.culprits),
            "missing": list(self.missing),
            "limited": self.limited,
            "steps": [step.to_dict() for step in self.steps],
        }

    def plot(self, ax=None):
        """Per-stem duration deltas against the tolerance, failing stems in red. Returns ``self``.

        The artists are kept on ``self.ax_``, ``self.bars_`` and ``self.figure_``.
        """
        return self._renderer().plot(self, ax=ax)


def _finite(x: float) -> float | None:
    return round(float(x), 3) if np.isfinite(x) else None


@dataclass(frozen=True)
class Recombination:
    """The stem sum aligned to the source: ``aligned_sum`` (lag and gain applied) and
    ``residual`` = source - aligned_sum, both ``(channels, samples)`` like the source."""

    lag_samples: int
    gain: float
    aligned_sum: np.ndarray
    residual: np.ndarray
    residual_db: float


def _energy_db(part: float, whole: float) -> float:
    return float(10 * np.log10(part / whole)) if part > 0 and whole > 0 else float("-inf")


def recombination(stemset, *, max_lag_s: float | None = None, excerpt_s: float = 10.0) -> Recombination:
    """Sum the conformed stems, find the lag and least-squares gain against the source, and the residual."""
    if stemset.source is None:
        if stemset.source_error:
            raise UsageError(f"this set's source track was not downloaded ({stemset.source_error}), so there is "
                             f"nothing to check the stems against")
        raise UsageError("this set has no source track to check against (in a folder, name it mixture.* or "
                         "source.*)")
    conformed = stemset.conform()
    sr, source = conformed.sr, conformed.source
    total = sum_tracks(conformed.stems.values(), channels=conformed.channels, length=conformed.length)
    max_lag = int((lag_range(conformed.length / sr) if max_lag_s is None else max_lag_s) * sr)
    lag = estimate_lag(source, total, max_lag=max_lag, excerpt=int(excerpt_s * sr))
    aligned = shift(total, lag, conformed.length)
    window = overlap(lag, conformed.length)  # where the shifted sum still has samples
    products = gram([source[:, window], aligned[:, window]])
    gain = float(products[0, 1] / products[1, 1]) if products[1, 1] > 0 else 0.0
    aligned *= np.float32(gain)
    residual = np.subtract(source, aligned, dtype=np.float32)
    inside = residual[:, window]
    source_energy = products[0, 0] * inside.shape[-1]  # gram() gives mean products per sample
    residual_energy = float(np.einsum("ij,ij->", inside, inside, dtype=np.float64))
    residual_db = max(_energy_db(residual_energy, source_energy), -200.0) if source_energy > 0 else float("nan")
    return Recombination(lag, gain, aligned, residual, float(residual_db))


def overlap(lag: int, length: int) -> slice:
    """The samples where a track moved ``lag`` samples earlier (:func:`stemlab.dsp.shift`) still
    overlaps the original: a late stem has nothing to say about the source's last ``lag`` samples.

    >>> overlap(3, 10), overlap(-2, 10)
    (slice(0, 7, None), slice(2, 10, None))
    """
    return slice(0, length - lag) if lag >= 0 else slice(-lag, length)


def _fit(source: np.ndarray, parts: list[np.ndarray]) -> tuple[np.ndarray, float, np.ndarray]:
    """Least-squares gains of ``parts`` in ``source``, the residual's energy, and the Gram matrix."""
    products = gram([source, *parts]) * source.shape[-1]  # inner products over the channels' samples
    matrix, target = products[1:, 1:], products[0, 1:]
    gains = np.linalg.lstsq(matrix, target, rcond=1e-10)[0] if len(parts) else np.zeros(0)
    residual = products[0, 0] - 2 * gains @ target + gains @ matrix @ gains
    return gains, max(float(residual), 0.0), products


def _own_lags(source: np.ndarray, base: dict, audible: list[str], judged: list[str], gain_of: dict, *, sr: int,
              max_lag: int, excerpt: int) -> dict[str, int]:
    """Each judged stem's own lag: the stem correlated, where it is loudest, with the source minus
    every other stem (at its fitted gain), which leaves the stem's own part of the source."""
    fitted = sum_tracks([gain_of[n] * base[n] for n in audible], channels=source.shape[0], length=source.shape[1])
    lags = {}
    for name in judged:
        audio = base[name]
        center = loudest_center(audio, sr)
        lo = max(0, center - excerpt // 2 - max_lag)
        hi = min(source.shape[1], center + excerpt // 2 + max_lag)
        others = source[:, lo:hi] - (fitted[:, lo:hi] - gain_of[name] * audio[:, lo:hi])
        lags[name] = estimate_lag(others, audio[:, lo:hi], max_lag=max_lag, excerpt=excerpt, center=center - lo)
    return lags


def _describe_gain(gain_db: float) -> str:
    return f"{abs(gain_db):.1f} dB {'quieter' if gain_db > 0 else 'louder'}"


def check(stemset, *, tolerance_s: float = 0.05, residual_tolerance_db: float = -20.0,
          gain_tolerance_db: float = 1.0, lag_tolerance_s: float = 0.005, max_lag_s: float | None = None,
          excerpt_s: float = 10.0, cache_dir: str | os.PathLike | None = None, settings=None) -> CheckReport:
    """Check that ``stemset``'s stems recombine to its source, and name what does not. See the
    module docstring.

    Parameters
    ----------
    stemset : StemSet, set folder or set id
    tolerance_s : float
        Largest allowed ``|stem duration - source duration|``.
    residual_tolerance_db : float
        Largest allowed residual energy, relative to the source (dB).
    gain_tolerance_db, lag_tolerance_s : float
        Largest allowed gain (dB) and lag (s), of the stem sum and of each stem.
    max_lag_s : float, optional
        How far lags are searched; default :func:`stemlab.dsp.lag_range` of the source's duration.
    excerpt_s : float
        The length of the excerpt a lag is estimated on.
    cache_dir, settings : optional
        Where a set named by id or folder is found and its derived data goes.

    Returns
    -------
    CheckReport
    """
    if not isinstance(stemset, StemSet):
        stemset = as_set(stemset, settings=Settings.of(settings, cache_dir=cache_dir), what="check()")
    parts = recombination(stemset, max_lag_s=max_lag_s, excerpt_s=excerpt_s)
    conformed = stemset.conform()
    sr, source = conformed.sr, conformed.source
    source_duration = stemset.source.duration
    threshold = silence_threshold(source)
    problems: list[str] = []
    if stemset.source.info.truncated:
        problems.append(f"the source is truncated: the file ends at {source_duration:.3f} s, before the length its "
                        f"own header claims")
    names = list(conformed.stems)

    # per stem: its level, and its gain in the source, fitted jointly with the others, all aligned
    # by the sum's lag
    common_lag = parts.lag_samples
    window = overlap(common_lag, conformed.length)
    source = source[:, window]
    base = {name: (shift(audio, common_lag, conformed.length) if common_lag else audio)[:, window]
            for name, audio in conformed.stems.items()}
    length = source.shape[1]
    levels = {name: rms_db(audio) for name, audio in conformed.stems.items()}
    audible = [name for name in names if not silent_level(levels[name], threshold)]
    gains, residual_energy, products = _fit(source, [base[n] for n in audible])
    source_energy = products[0, 0]
    shares = {name: _energy_db(products[i + 1, i + 1], source_energy) for i, name in enumerate(audible)}
    gain_of = dict(zip(audible, gains))
    own_lag = {name: 0 for name in names}  # each stem's lag beyond the sum's
    judged = [name for name in audible if shares[name] >= JUDGE_BELOW_DB]

    max_lag = int((lag_range(length / sr) if max_lag_s is None else max_lag_s) * sr)
    fitted_db = _energy_db(residual_energy, source_energy)
    off = not fitted_db <= residual_tolerance_db or any(
        abs(_db(gain_of[n])) > gain_tolerance_db or gain_of[n] < 0 for n in judged)
    if off and judged:
        lags = _own_lags(source, base, audible, judged, gain_of, sr=sr, max_lag=max_lag,
                         excerpt=int(excerpt_s * sr))
        if any(lags.values()):
            aligned = [shift(base[n], lags[n], length) if lags.get(n) else base[n] for n in audible]
            new_gains, new_residual, _ = _fit(source, aligned)
            if _energy_db(new_residual, source_energy) < fitted_db - 1.0:  # the lags explain the residual
                own_lag.update(lags)
                gain_of = dict(zip(audible, new_gains))
                fitted_db = _energy_db(new_residual, source_energy)

    limited = (not fitted_db <= residual_tolerance_db or not parts.residual_db <= residual_tolerance_db) and \
        _looks_limited(source, base, audible)

    # durations, stated durations, and what each stem's gain and lag say
    rows = []
    for stem in stemset:
        name = stem.name
        delta = stem.duration - source_duration
        verdicts = []
        if abs(delta) > tolerance_s:
            verdicts.append("short" if delta < 0 else "long")
            problems.append(f"{name} is {abs(delta):.3f} s {'longer' if delta > 0 else 'shorter'} than the source")
        if stem.info.truncated:
            verdicts.append("truncated")
            problems.append(f"{name} is truncated: the file ends at {stem.duration:.3f} s, before the length its own "
                            f"header claims (a download cut short?); fetch it again with force=True")
        if stem.stated_duration is not None and abs(stem.duration - stem.stated_duration) > tolerance_s:
            verdicts.append("not as stated")
            problems.append(f"{name} decodes to {stem.duration:.3f} s but the provider stated "
                            f"{stem.stated_duration:.3f} s")
        rows.append([stem, delta, verdicts])

    # a limiter's work is not any stem's fault: with a limited mix, no gain is blamed
    common = None if limited else _common_gain(judged, gain_of, gain_tolerance_db)
    culprits = []
    for row in rows:
        stem, _, verdicts = row
        name = stem.name
        if name not in judged:
            continue
        lag, gain = common_lag + own_lag[name], gain_of[name]
        if abs(own_lag[name]) > lag_tolerance_s * sr:
            verdicts.append("late" if lag > 0 else "early")
            problems.append(f"{name} is {abs(lag):,} samples ({1000 * abs(lag) / sr:.1f} ms) "
                            f"{'late' if lag > 0 else 'early'} against the source")
        if gain < 0:
            verdicts.append("inverted")
            problems.append(f"{name} is inverted: its polarity is the opposite of its part in the source")
        if common is None and not limited and abs(_db(gain)) > gain_tolerance_db:
            verdicts.append(_describe_gain(_db(gain)))
            problems.append(f"{name} is {_describe_gain(_db(gain))} than its part in the source")
        if verdicts:
            culprits.append(name)
    if common is not None:
        problems.append(f"the stems are {_describe_gain(common)} than the source")

    expected = tuple(stemset.manifest.get("expected_stems") or ())
    missing = tuple(n for n in expected if n not in stemset)
    if limited:
        total = sum_tracks([base[n] for n in audible], channels=conformed.channels, length=length)
        problems.append(f"the source looks limited or clipped after the stems were summed: the stem sum peaks "
                        f"{20 * np.log10(_peak(total) / max(_peak(source), 1e-12)):.1f} dB above the source, "
                        f"and where the sum is loud the source is quieter; no stem is to blame")
    elif not fitted_db <= residual_tolerance_db:
        share = 100 * 10 ** (fitted_db / 10)
        named = f": this set lacks {', '.join(missing)} of the provider's split" if missing else ""
        problems.append(f"a part seems to be missing: after fitting every stem, the residual still holds "
                        f"{share:.0f}% of the source's energy ({fitted_db:.1f} dB){named}")
    elif not parts.residual_db <= residual_tolerance_db and not culprits and common is None:
        problems.append(f"the residual (source minus aligned sum) is {parts.residual_db:.1f} dB, above "
                        f"{residual_tolerance_db:.0f} dB")
    if common is None and not culprits and not limited and abs(_db(parts.gain)) > gain_tolerance_db:
        problems.append(f"the stems are {_describe_gain(_db(parts.gain))} than the source")
    if abs(common_lag) > lag_tolerance_s * sr:
        problems.append(f"the stems are {abs(common_lag):,} samples ({1000 * abs(common_lag) / sr:.1f} ms) "
                        f"{'late' if common_lag > 0 else 'early'} against the source")

    stems = tuple(StemCheck(
        stem.name, stem.duration, delta, ok=not verdicts, silent=stem.name not in audible,
        level_dbfs=levels[stem.name], stated_duration=stem.stated_duration, native_sr=stem.native_sr,
        gain=float(gain_of.get(stem.name, 1.0)), lag_samples=int(common_lag + own_lag[stem.name]),
        share_db=float(shares.get(stem.name, float("-inf"))),
        verdict=", ".join(verdicts) or ("silent" if stem.name not in audible else
                                        "ok" if stem.name in judged else "too quiet to judge"))
        for stem, delta, verdicts in rows)
    tolerances = dict(tolerance_s=tolerance_s, residual_tolerance_db=residual_tolerance_db,
                      gain_tolerance_db=gain_tolerance_db, lag_tolerance_s=lag_tolerance_s,
                      max_lag_s=max_lag / sr)
    return CheckReport(ok=not problems, sr=sr, source_duration=source_duration, lag_samples=parts.lag_samples,
                       gain=parts.gain, residual_db=parts.residual_db, stems=stems, problems=tuple(problems),
                       tolerances=tolerances, fitted_residual_db=fitted_db, culprits=tuple(culprits),
                       missing=missing, limited=limited, steps=conformed.steps)


def _db(gain: float) -> float:
    """A least-squares gain ``g`` (source ≈ g · stem) as the stem's level error in dB: positive
    when the stem is quieter than its part in the source."""
    return float(20 * np.log10(abs(gain))) if gain else float("inf")


def _common_gain(judged: list[str], gain_of: dict, tolerance_db: float) -> float | None:
    """The gain error (dB) every judged stem shares, when there are two or more, they agree within
    half the tolerance, and it exceeds the tolerance; else None."""
    values = [_db(gain_of[n]) for n in judged if gain_of[n] > 0]
    if len(values) < 2 or len(values) < len(judged) or max(values) - min(values) > tolerance_db / 2:
        return None
    middle = float(np.median(values))
    return middle if abs(middle) > tolerance_db else None


def _peak(audio: np.ndarray) -> float:
    return float(np.max(np.abs(audio))) if audio.size else 0.0


def _looks_limited(source: np.ndarray, base: dict, audible: list[str]) -> bool:
    """Whether the source is the stem sum through a limiter or a clipper, which never make a sample
    louder: the sum peaks above the source's ceiling, and at the sum's loudest samples (its top 5%)
    the source is hardly ever louder than the sum and often quieter (a missing stem or coding noise
    leaves it louder about half the time)."""
    thin = [np.asarray(base[n][:, ::4], dtype=np.float32) for n in audible]
    total = np.abs(sum_tracks(thin, channels=source.shape[0], length=thin[0].shape[1] if thin else 0)).ravel()
    mix = np.abs(np.asarray(source[:, ::4], dtype=np.float32)).ravel()[: total.size]
    if total.size == 0 or not _peak(total) > 1.05 * _peak(mix):
        return False
    loud = total >= np.quantile(total, 0.95)
    louder = np.mean(mix[loud] > 1.001 * total[loud] + 1e-6)
    quieter = np.mean(mix[loud] < 0.999 * total[loud] - 1e-6)
    return bool(louder < 0.1 and quieter > 0.3)
