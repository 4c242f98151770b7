"""How a :class:`~stemlab.analysis.check.CheckReport` looks: a bar per stem, and its notebook table.

>>> stemlab.check(s).plot()            # doctest: +SKIP
"""

from __future__ import annotations

import html as _html

from .figures import figure_png

__all__ = ["plot", "html"]


def plot(report, ax=None):
    """Per-stem duration deltas against the tolerance, failing stems in red. Returns ``report``
    with ``ax_``, ``bars_`` and ``figure_`` set."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.35 * len(report.stems) + 1.4))
    names = [s.name for s in report.stems]
    deltas_ms = [1000 * s.delta_s for s in report.stems]
    colors = ["#c0392b" if not s.ok else ("#b0b0b0" if s.silent else "#2e86c1") for s in report.stems]
    bars = ax.barh(names, deltas_ms, color=colors)
    tol = 1000 * report.tolerances.get("tolerance_s", 0.05)
    ax.axvspan(-tol, tol, color="#2ecc71", alpha=0.12, lw=0)
    ax.axvline(0, color="k", lw=0.6)
    ax.invert_yaxis()
    ax.set_xlabel("stem duration - source duration (ms)")
    verdict = "recombines" if report.ok else "does NOT recombine"
    ax.set_title(f"{verdict}: lag {report.lag_samples} samples, {report.level_text}, "
                 f"residual {report.residual_db:.1f} dB", fontsize=10)
    object.__setattr__(report, "ax_", ax)
    object.__setattr__(report, "bars_", bars)
    object.__setattr__(report, "figure_", ax.figure)
    return report


def html(report, *, picture: bool = True) -> str:
    """The notebook repr: verdict, problems, a row per stem, and (with ``picture``) the plot as a
    small PNG."""
    verdict = ("<b style='color:#1e8449'>the stems recombine to the source</b>" if report.ok else
               "<b style='color:#c0392b'>the stems do not recombine to the source</b>")
    rows = "".join(
        f"<tr style='{'' if s.ok else 'background:#fdecea;color:#922b21;font-weight:bold'}"
        f"{'color:#999' if s.silent and s.ok else ''}'>"
        f"<td style='text-align:left'>{_html.escape(s.name)}</td><td>{s.duration:.3f}</td>"
        f"<td>{s.native_sr or ''}</td><td>{1000 * s.delta_s:+.1f}</td>"
        f"<td>{'silent' if s.silent else f'{s.level_dbfs:.1f}'}</td>"
        f"<td>{'' if s.silent else f'{_gain_words(s.gain_db)}'}</td><td>{'' if s.silent else s.lag_samples}</td>"
        f"<td style='text-align:left'>{_html.escape(s.verdict)}</td></tr>" for s in report.stems)
    problems = "".join(f"<li>{_html.escape(p)}</li>" for p in report.problems)
    steps = "".join(f"<li>{_html.escape(str(step))}</li>" for step in report.steps)
    summary = (f"source {report.source_duration:.3f} s · lag {report.lag_samples} samples "
               f"({1000 * report.lag_s:+.1f} ms) · {report.level_text} · residual {report.residual_db:.1f} dB")
    picture = figure_png(lambda ax: plot(report, ax=ax), figsize=(7, 0.3 * len(report.stems) + 1.3),
                         dpi=80) if picture else ""
    done = f"<details><summary>conformed: {len(report.steps)} step(s)</summary><ul>{steps}</ul></details>" \
        if steps else ""
    return (f"<div>{verdict}<br><small>{summary}</small>{f'<ul>{problems}</ul>' if problems else ''}"
            f"<table><thead><tr><th>stem</th><th>duration (s)</th><th>rate (Hz)</th><th>delta (ms)</th>"
            f"<th>level (dBFS)</th><th>in the source</th><th>lag</th><th>verdict</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>{done}{picture}</div>")


def _gain_words(gain_db: float) -> str:
    """A stem's least-squares gain in the source as words: "as is", "6.0 dB quieter"..."""
    if abs(gain_db) < 0.05:
        return "as is"
    return f"{abs(gain_db):.1f} dB {'quieter' if gain_db > 0 else 'louder'}"
