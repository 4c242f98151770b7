"""``check``: do a set's stems recombine to its source?

It measures, against the source:

* each stem's duration delta (``tolerance_s``, default 0.05 s: MP3 framing alone can add up to
  ~26 ms at 44.1 kHz, so 50 ms separates framing from a truly short or long stem), and its
  decoded duration against the duration the provider stated, when it stated one;
* the lag of the stem sum (cross-correlation over ``max_lag_s`` either way);
* the least-squares gain that best maps the aligned sum onto the source;
* the residual, source minus the aligned and gained sum, in dB relative to the source.

A silent stem is fine (reported, never a failure). The set passes when every duration is within
tolerance, ``|lag| <= lag_tolerance_s``, the gain is within ``gain_tolerance_db`` of 0 dB and the
residual is at most ``residual_tolerance_db``.

>>> report = check(stemset)          # doctest: +SKIP
>>> report.ok, report.lag_samples, round(report.residual_db, 1)          # doctest: +SKIP
(True, 0, -31.2)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ..config import Settings
from ..errors import UsageError
from ..fetching import as_set
from ..rendering import Rendered
from ..stemset import StemSet
from ..dsp import SILENCE_DB, estimate_lag, rms_db, shift, sum_tracks

__all__ = ["check", "CheckReport", "StemCheck", "recombination", "Recombination"]

@dataclass(frozen=True)
class StemCheck:
    """One stem's row of a :class:`CheckReport`."""

    name: str
    duration: float
    delta_s: float
    ok: bool
    silent: bool
    level_dbfs: float
    stated_duration: float | None = None


@dataclass(frozen=True)
class CheckReport(Rendered):
    """What :func:`check` found. Compute once, look many times: ``.plot()``, notebook repr, ``.to_dict()``."""

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

    @property
    def lag_s(self) -> float:
        return self.lag_samples / self.sr

    @property
    def gain_db(self) -> float:
        return float(20 * np.log10(abs(self.gain))) if self.gain else float("-inf")

    def to_dict(self) -> dict:
        """The CLI's ``check --json`` object."""
        return {
            "ok": self.ok,
            "source_duration": round(self.source_duration, 6),
            "lag_samples": self.lag_samples,
            "gain": round(self.gain, 6),
            "residual_db": _finite(self.residual_db),
            "stems": [{"name": s.name, "duration": round(s.duration, 6), "delta_s": round(s.delta_s, 6),
                       "ok": s.ok, "silent": s.silent} for s in self.stems],
            "problems": list(self.problems),
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


def recombination(stemset, *, max_lag_s: float = 0.5, excerpt_s: float = 10.0) -> Recombination:
    """Sum the stems, find the lag and least-squares gain against the source, and the residual."""
    if stemset.source is None:
        raise UsageError("this set has no source track to check against (its fetch could not download it)")
    sr = stemset.sr
    source = np.asarray(stemset.source.audio, dtype=np.float32)
    channels, length = source.shape
    total = sum_tracks((stem.audio for stem in stemset), channels=channels, length=length)
    lag = estimate_lag(source, total, max_lag=int(max_lag_s * sr), excerpt=int(excerpt_s * sr))
    aligned = shift(total, lag, length)
    energy = float(np.vdot(aligned, aligned).real)
    gain = float(np.vdot(source, aligned).real / energy) if energy > 0 else 0.0
    aligned *= np.float32(gain)
    residual = source - aligned
    source_energy = float(np.vdot(source, source).real)
    residual_energy = max(float(np.vdot(residual, residual).real), 1e-20 * source_energy)  # floor: -200 dB
    residual_db = 10 * np.log10(residual_energy / source_energy) if source_energy > 0 else float("nan")
    return Recombination(lag, gain, aligned, residual, float(residual_db))


def check(stemset, *, tolerance_s: float = 0.05, residual_tolerance_db: float = -20.0,
          gain_tolerance_db: float = 1.0, lag_tolerance_s: float = 0.005, max_lag_s: float = 0.5,
          excerpt_s: float = 10.0, cache_dir: str | os.PathLike | None = None, settings=None) -> CheckReport:
    """Check that ``stemset``'s stems recombine to its source. See the module docstring.

    Parameters
    ----------
    stemset : StemSet, set folder or set id
    tolerance_s : float
        Largest allowed ``|stem duration - source duration|``.
    residual_tolerance_db : float
        Largest allowed residual energy, relative to the source (dB).
    gain_tolerance_db, lag_tolerance_s : float
        Largest allowed ``|gain|`` (dB) and ``|lag|`` (s) of the stem sum.
    max_lag_s, excerpt_s : float
        Lag search range, and the length of the excerpt the lag is estimated on.

    cache_dir, settings : optional
        Where a set named by id or folder is found and its derived data goes.

    Returns
    -------
    CheckReport
    """
    if not isinstance(stemset, StemSet):
        stemset = as_set(stemset, settings=Settings.of(settings, cache_dir=cache_dir), what="check()")
    parts = recombination(stemset, max_lag_s=max_lag_s, excerpt_s=excerpt_s)
    sr = stemset.sr
    source_duration = stemset.source.audio.shape[1] / sr
    rows, problems = [], []
    for stem in stemset:
        audio = stem.audio
        duration = audio.shape[1] / sr
        delta = duration - source_duration
        level = rms_db(audio)
        ok = abs(delta) <= tolerance_s
        if not ok:
            problems.append(f"{stem.name} is {abs(delta):.3f} s {'longer' if delta > 0 else 'shorter'} than the source")
        stated = stem.stated_duration
        if stated is not None and abs(duration - stated) > tolerance_s:
            ok = False
            problems.append(f"{stem.name} decodes to {duration:.3f} s but the provider stated {stated:.3f} s")
        rows.append(StemCheck(stem.name, duration, delta, ok, bool(level < SILENCE_DB), level, stated))

    lag, gain, residual_db = parts.lag_samples, parts.gain, parts.residual_db
    gain_db = 20 * np.log10(abs(gain)) if gain else float("-inf")
    if abs(lag) > lag_tolerance_s * sr:
        problems.append(f"the stem sum is {abs(lag)} samples ({1000 * abs(lag) / sr:.1f} ms) "
                        f"{'late' if lag > 0 else 'early'} against the source")
    if not abs(gain_db) <= gain_tolerance_db:
        problems.append(f"the stem sum is {gain_db:+.2f} dB off the source's level")
    if not residual_db <= residual_tolerance_db:
        problems.append(f"the residual (source minus aligned sum) is {residual_db:.1f} dB, above "
                        f"{residual_tolerance_db:.0f} dB")
    tolerances = dict(tolerance_s=tolerance_s, residual_tolerance_db=residual_tolerance_db,
                      gain_tolerance_db=gain_tolerance_db, lag_tolerance_s=lag_tolerance_s)
    return CheckReport(ok=not problems, sr=sr, source_duration=source_duration, lag_samples=lag, gain=gain,
                       residual_db=residual_db, stems=tuple(rows), problems=tuple(problems), tolerances=tolerances)
