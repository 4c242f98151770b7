"""The comparison view: one stem group, two sets, switched A/B while playing.

>>> c = stemlab.compare(cqtai, apiframe, reference=stemlab.demo_song())     # doctest: +SKIP
>>> c.view(stem="vocals")                                                  # doctest: +SKIP

Rows: A's estimate of the group (the player's A side), B's (the B side), their difference and,
when there is one, the reference. The A/B buttons switch between A and B level-matched, without
stopping; the difference and the reference are muted until you unmute them. Under the player, the
comparison's numbers for that stem.
"""

from __future__ import annotations

import html as _html

import numpy as np

from ..errors import UsageError
from .explorer import Explorer
from .tracks import Track

__all__ = ["CompareView", "plot", "html", "formatted"]


class CompareView:
    """A :class:`~stemlab.analysis.compare.Comparison` seen and heard one stem group at a time."""

    def __init__(self, comparison, *, stem: str | None = None, a: str | None = None, b: str | None = None):
        import ipywidgets as w

        self.comparison = comparison
        labels = list(comparison.audio)
        stem = stem or next(iter(comparison.groups))
        a = a or labels[0]
        b = b or next(label for label in labels if label != a)
        for value, allowed, what in ((stem, list(comparison.groups), "stem"), (a, labels, "set"), (b, labels, "set")):
            if value not in allowed:
                raise UsageError(f"no {what} {value!r} in this comparison; pick one of {', '.join(allowed)}")
        self.stem_select = w.Dropdown(options=list(comparison.groups), value=stem, description="stem")
        self.a_select = w.Dropdown(options=labels, value=a, description="A")
        self.b_select = w.Dropdown(options=labels, value=b, description="B")
        self.table = w.HTML()
        self._cache: dict[tuple, Track] = {}
        self.explorer = Explorer(tracks=self._tracks(), title=f"compare {a} and {b}")
        for name, value in self._extras(len(self.view.tracks)).items():
            setattr(self.view, name, value)
        for control in (self.stem_select, self.a_select, self.b_select):
            control.observe(lambda _: self.update(), names="value")
        self._show_table()
        self.widget = w.VBox([w.HBox([self.stem_select, self.a_select, self.b_select]), self.explorer.widget,
                              self.table])

    @property
    def view(self):
        """The player (:class:`~stemlab.view.widget.StemView`)."""
        return self.explorer.view

    def _tracks(self) -> list[Track]:
        audio, stem = self.comparison.audio, self.stem_select.value
        a, b = self.a_select.value, self.b_select.value
        sr = self.comparison.sr

        def track(key, make) -> Track:  # display data and MP3s are computed once per (set, stem)
            if key not in self._cache:
                self._cache[key] = make()
            return self._cache[key]

        tracks = [track(("A", a, stem), lambda: Track(f"A: {a}", "source", audio[a][stem], sr, label=f"A: {a} {stem}")),
                  track(("B", b, stem), lambda: Track(f"B: {b}", "stem", audio[b][stem], sr, label=f"B: {b} {stem}")),
                  track(("A - B", a, b, stem), lambda: Track("A - B", "residual", audio[a][stem] - audio[b][stem], sr,
                                                             label="difference"))]
        if "reference" in audio and "reference" not in (a, b):
            tracks.append(track(("reference", stem), lambda: Track("reference", "stem", audio["reference"][stem], sr,
                                                                   label="reference")))
        return tracks

    def _extras(self, n: int) -> dict:
        """The A/B captions, and the difference and reference rows muted."""
        return {"ab_labels": [f"B: {self.b_select.value}", f"A: {self.a_select.value}"],
                "muted": [False, False] + [True] * (n - 2)}

    def update(self) -> None:
        """Show the stem and sets now selected: the numbers at once, the player busy (the page
        dims its rows after 200 ms) until the new rows, captions and audio arrive together."""
        a, b, stem = self.a_select.value, self.b_select.value, self.stem_select.value
        if a == b:
            self.table.value = "<i>pick two different sets</i>"
            return
        self._show_table()
        self.view.busy = f"loading {stem}: A {a}, B {b}"
        try:
            tracks = self._tracks()
            self.explorer.replace_tracks(tracks, **self._extras(len(tracks)))
        finally:
            self.view.busy = ""

    def _show_table(self) -> None:
        table = self.comparison.table
        rows = table[table.stem == self.stem_select.value]
        wanted = {self.a_select.value, self.b_select.value, f"{self.a_select.value} vs {self.b_select.value}",
                  f"{self.b_select.value} vs {self.a_select.value}"}
        rows = rows[rows.set.isin(wanted)]
        pivot = rows.pivot_table(index="metric", columns="set", values="value", sort=False, dropna=False)
        self.table.value = f"<b>{_html.escape(self.stem_select.value)}</b>" + formatted(pivot).to_html()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def plot(comparison, ax=None, *, metric: str | None = None):
    """Per stem, the spread over 1-second frames of ``metric`` for every set (boxes), or bars
    for whole-signal metrics. Default: ``sdr`` with a reference, ``agreement_si_sdr`` without.
    Returns ``comparison`` (artists on ``ax_``, ``figure_``)."""
    import matplotlib.pyplot as plt

    metric = metric or ("sdr" if comparison.reference else "agreement_si_sdr")
    if ax is None:
        width = max(6, 1.3 * len(comparison.groups) * max(1, len(comparison.sets) // 2))
        _, ax = plt.subplots(figsize=(width, 3.5))
    table, frames = comparison.table, comparison.frames
    frames = frames[frames.metric == metric] if frames is not None else None
    labels = sorted(set(table[table.metric == metric].set), key=str)
    if metric == "agreement_si_sdr":  # symmetric: one direction
        labels = [label for label in comparison.pairs() if label in labels]
    stems = list(comparison.groups)
    width = 0.8 / max(1, len(labels))
    for i, label in enumerate(labels):
        positions = [k + (i - (len(labels) - 1) / 2) * width for k in range(len(stems))]
        if frames is not None and len(frames):
            data = [_finite(frames[(frames.set == label) & (frames.stem == s)].value) for s in stems]
            keep = [(p, d) for p, d in zip(positions, data) if len(d)]
            if keep:
                ax.boxplot([d for _, d in keep], positions=[p for p, _ in keep], widths=width * 0.9,
                           patch_artist=True, boxprops={"facecolor": f"C{i}", "alpha": 0.6},
                           medianprops={"color": "k"}, showfliers=False)
        else:
            rows = table[(table.metric == metric) & (table.set == label)]
            values = [np.mean(_finite(rows[rows.stem == s].value)) if len(_finite(rows[rows.stem == s].value))
                      else np.nan for s in stems]
            ax.bar(positions, values, width=width * 0.9, color=f"C{i}", alpha=0.8)
        ax.plot([], [], color=f"C{i}", lw=6, alpha=0.6, label=label)
    ax.set_xticks(range(len(stems)), stems)
    ax.set_ylabel(f"{metric} (dB)" if metric != "leakage" else "leakage (0..1)")
    ax.axhline(0, color="0.6", lw=0.6)
    ax.legend(fontsize=8, ncol=min(4, len(labels)))
    comparison.ax_, comparison.figure_ = ax, ax.figure
    return comparison


def html(comparison) -> str:
    """The notebook repr: one stems x sets table per metric ("identical" for identical signals,
    and agreement in one direction, see :meth:`~stemlab.analysis.compare.Comparison.pivot`)."""
    parts = [f"<b>compare</b>: {len(comparison.sets)} sets, stems {', '.join(comparison.groups)}"
             + (f", reference {comparison.reference}" if comparison.reference else ", no reference")]
    for metric in ("si_sdr", "sdr", "sdr_improvement", "agreement_si_sdr", "leakage", "loudness_db"):
        if (comparison.table.metric == metric).any():
            table = formatted(comparison.pivot(metric))
            table = table.T if metric == "agreement_si_sdr" else table  # a row per pair: never too wide
            parts.append(f"<h4 style='margin:8px 0 2px'>{metric}</h4>" + table.to_html())
    return "<div>" + "".join(parts) + "</div>"


def formatted(table):
    """A table of scores as text: 2 decimals, "silent" for NaN, "identical" for +inf.

    >>> import pandas as pd
    >>> formatted(pd.DataFrame({"a": [1.234, float("nan"), float("inf")]})).a.tolist()
    ['1.23', 'silent', 'identical']
    """
    from ..analysis.compare import as_text

    return as_text(table)


def _finite(values):
    """The finite values of a Series (silent NaN and identical +inf left out of plots' ranges)."""
    array = np.asarray(values, dtype=float)
    return array[np.isfinite(array)]
