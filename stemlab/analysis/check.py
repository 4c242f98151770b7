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

import html
from dataclasses import dataclass, field

import numpy as np

from ..errors import UsageError
from .metrics import SILENCE_DB, rms_db

__all__ = ["check", "CheckReport", "StemCheck", "estimate_lag", "recombination", "Recombination"]

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
class CheckReport:
    """What :func:`check` found. Compute once, look many times: ``.plot()``, notebook repr, ``.to_dict()``."""

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
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(8, 0.35 * len(self.stems) + 1.4))
        names = [s.name for s in self.stems]
        deltas_ms = [1000 * s.delta_s for s in self.stems]
        colors = ["#c0392b" if not s.ok else ("#b0b0b0" if s.silent else "#2e86c1") for s in self.stems]
        bars = ax.barh(names, deltas_ms, color=colors)
        tol = 1000 * self.tolerances.get("tolerance_s", 0.05)
        ax.axvspan(-tol, tol, color="#2ecc71", alpha=0.12, lw=0)
        ax.axvline(0, color="k", lw=0.6)
        ax.invert_yaxis()
        ax.set_xlabel("stem duration - source duration (ms)")
        verdict = "recombines" if self.ok else "does NOT recombine"
        ax.set_title(f"{verdict}: lag {self.lag_samples} samples, gain {self.gain_db:+.2f} dB, "
                     f"residual {self.residual_db:.1f} dB", fontsize=10)
        object.__setattr__(self, "ax_", ax)
        object.__setattr__(self, "bars_", bars)
        object.__setattr__(self, "figure_", ax.figure)
        return self

    def _repr_html_(self) -> str:
        verdict = ("<b style='color:#1e8449'>the stems recombine to the source</b>" if self.ok else
                   "<b style='color:#c0392b'>the stems do not recombine to the source</b>")
        rows = "".join(
            f"<tr style='{'' if s.ok else 'background:#fdecea;color:#922b21;font-weight:bold'}"
            f"{'color:#999' if s.silent and s.ok else ''}'>"
            f"<td style='text-align:left'>{html.escape(s.name)}</td><td>{s.duration:.3f}</td>"
            f"<td>{1000 * s.delta_s:+.1f}</td><td>{'silent' if s.silent else f'{s.level_dbfs:.1f}'}</td>"
            f"<td>{'ok' if s.ok else 'FAIL'}</td></tr>" for s in self.stems)
        problems = "".join(f"<li>{html.escape(p)}</li>" for p in self.problems)
        summary = (f"source {self.source_duration:.3f} s · lag {self.lag_samples} samples "
                   f"({1000 * self.lag_s:+.1f} ms) · gain {self.gain_db:+.2f} dB · residual {self.residual_db:.1f} dB")
        return (f"<div>{verdict}<br><small>{summary}</small>{f'<ul>{problems}</ul>' if problems else ''}"
                f"<table><thead><tr><th>stem</th><th>duration (s)</th><th>delta (ms)</th><th>level (dBFS)</th>"
                f"<th></th></tr></thead><tbody>{rows}</tbody></table>{_figure_html(self)}</div>")


def _figure_html(report: CheckReport) -> str:
    """The report's plot as an inline PNG (small: a bar per stem)."""
    import base64
    import io

    from ..view.figures import new_figure

    fig = new_figure(figsize=(7, 0.3 * len(report.stems) + 1.3))
    report.plot(ax=fig.add_subplot())
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    return f"<img src='data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}'/>"


def _finite(x: float) -> float | None:
    return round(float(x), 3) if np.isfinite(x) else None


def _fit_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    """``audio`` with ``channels`` channels: mono is repeated, more channels are averaged down."""
    if audio.shape[0] == channels:
        return audio
    if audio.shape[0] == 1:
        return np.broadcast_to(audio, (channels, audio.shape[1]))
    mixed = audio.mean(axis=0, keepdims=True)
    return np.broadcast_to(mixed, (channels, audio.shape[1]))


def estimate_lag(reference: np.ndarray, signal: np.ndarray, *, max_lag: int, excerpt: int) -> int:
    """The shift (samples) that best aligns ``signal`` to ``reference`` (positive: ``signal`` is late).

    Cross-correlates mono mixdowns over an ``excerpt``-sample window from the middle, via FFT,
    and searches lags in ``[-max_lag, max_lag]``.

    >>> x = np.random.default_rng(0).standard_normal((1, 20000)).astype(np.float32)
    >>> estimate_lag(x, np.roll(x, 37, axis=1), max_lag=100, excerpt=8000)
    37
    """
    ref = np.asarray(reference, dtype=np.float64).mean(axis=0)
    sig = np.asarray(signal, dtype=np.float64).mean(axis=0)
    n = min(len(ref), len(sig))
    if n == 0:
        return 0
    start = max(0, (n - excerpt) // 2)
    stop = min(n, start + excerpt)
    a = ref[start:stop]
    lo, hi = max(0, start - max_lag), min(len(sig), stop + max_lag)
    b = sig[lo:hi]
    if not np.any(a) or not np.any(b):
        return 0
    size = 1 << int(np.ceil(np.log2(len(a) + len(b))))
    corr = np.fft.irfft(np.fft.rfft(b, size) * np.conj(np.fft.rfft(a, size)), size)
    # corr[k] = sum_t b[t + k] a[t]: b at offset k (relative to lo) matches a at 0 (relative to start)
    lags = np.arange(-max_lag, max_lag + 1)
    index = (lags + start - lo) % size
    valid = (lags + start - lo >= 0) & (lags + start - lo <= len(b) - 1)
    scores = np.where(valid, corr[index], -np.inf)
    return int(lags[int(np.argmax(scores))])


def _shift(audio: np.ndarray, lag: int, length: int) -> np.ndarray:
    """``audio`` moved ``lag`` samples earlier (undoing a late start), cut or zero-padded to ``length``."""
    out = np.zeros((audio.shape[0], length), dtype=np.float32)
    src = audio[:, max(lag, 0):]
    dst_start = max(-lag, 0)
    n = max(0, min(length - dst_start, src.shape[1]))
    out[:, dst_start:dst_start + n] = src[:, :n]
    return out


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
    total = np.zeros((channels, length), dtype=np.float32)
    for stem in stemset:
        n = min(length, stem.audio.shape[1])
        total[:, :n] += _fit_channels(np.asarray(stem.audio[:, :n], dtype=np.float32), channels)
    lag = estimate_lag(source, total, max_lag=int(max_lag_s * sr), excerpt=int(excerpt_s * sr))
    aligned = _shift(total, lag, length)
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
          excerpt_s: float = 10.0) -> CheckReport:
    """Check that ``stemset``'s stems recombine to its source. See the module docstring.

    Parameters
    ----------
    tolerance_s : float
        Largest allowed ``|stem duration - source duration|``.
    residual_tolerance_db : float
        Largest allowed residual energy, relative to the source (dB).
    gain_tolerance_db, lag_tolerance_s : float
        Largest allowed ``|gain|`` (dB) and ``|lag|`` (s) of the stem sum.
    max_lag_s, excerpt_s : float
        Lag search range, and the length of the excerpt the lag is estimated on.

    Returns
    -------
    CheckReport
    """
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
