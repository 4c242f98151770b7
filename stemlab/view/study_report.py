"""A provider study as one HTML page: what ran, the paired numbers, and where the providers disagree.

The page is handed the study's three tables (the study's data contract): ``results`` (one row per
number), ``songs`` (one row per song and provider) and ``summary`` (the paired differences of two
providers, with a bootstrap interval). It draws them, top to bottom: a header of counts; the
summary table and its forest plot; a strip plot per score, songs as dots; the songs the providers
disagree on most, with players for each provider's stems; the failures. Nothing here computes a
metric: the page selects, orders and subtracts numbers it is given.

Figures are inline PNG; the audio is linked, not embedded (relative paths from the page to the
cached MP3s), so the page stays small and works from ``file://`` with no network.

>>> path = write_study_report(out, results=results, songs=songs, summary=summary)   # doctest: +SKIP
>>> path.name                                                                       # doctest: +SKIP
'report.html'
"""

from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from urllib.parse import quote

from ..analysis.compare import score_text
from ..cache import MANIFEST, read_record
from ..errors import CacheError
from ..files import atomic_write_bytes
from ..taxonomy import GROUPS, TWELVE_STEMS, stems_in_group
from .figures import figure_png
from .html import PAGE_CSS, audio_player

__all__ = ["write_study_report", "render_study_report", "Disagreement", "disagreements", "song_state", "verdict",
           "forest_rows", "strip_metrics"]

SCORES = ("si_sdr", "si_sdr_improvement", "sdr", "sdr_improvement")  # against the true stems; higher is better
FALLBACK = ("residual_db", "leakage")  # the forest plot's metrics when no song has true stems
AGREEMENT = "agreement_si_sdr"
LOWER_IS_BETTER = frozenset({"leakage"})
NO_DIRECTION = frozenset({"residual_db", "loudness_db"})
DIGITS = {"leakage": 3, "recombines": 2}  # decimals in the tables (else 2)
MOST = 5  # songs in "where the providers disagree most"
STRIPS = 4  # strip plots at most
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
VERDICT_COLOURS = {"good": "#1e8449", "neutral": "#8e44ad", "": "#555555"}

STUDY_CSS = """
.facts { display: flex; flex-wrap: wrap; gap: 4px 18px; list-style: none; padding: 0; margin: 6px 0 10px; }
.facts b { font-size: 16px; } .facts .bad b { color: #b03a2e; }
.neutral { color: #8e44ad; font-weight: 600; } .good { font-weight: 600; }
.agreement-only { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: 6px 10px; }
ol.disagree > li { margin: 0 0 14px; } .players { display: flex; flex-wrap: wrap; gap: 6px 18px; margin: 4px 0; }
.players .set { border-left: 3px solid #d0d7de; padding-left: 8px; } .players .set > b { display: block; }
.players figure { display: inline-block; margin: 2px 8px 2px 0; }
.players figcaption { font-size: 12px; color: #57606a; }
.players audio { width: 220px; height: 32px; display: block; }
table.summary td:nth-child(-n+3), table.summary th:nth-child(-n+3), table.summary td:last-child,
table.failed td, table.failed th { text-align: left; }
table.summary td { white-space: nowrap; } td.error { max-width: 60em; overflow-wrap: anywhere; }
.strips { display: flex; flex-wrap: wrap; gap: 0 24px; align-items: flex-start; }
"""


# ---- small pieces --------------------------------------------------------------------------------

def _rows(table) -> list[dict]:
    """A table's rows as dicts (none for ``None`` or an empty table).

    >>> import pandas as pd
    >>> _rows(pd.DataFrame({"song": ["a"], "value": [1.0]})), _rows(None)
    ([{'song': 'a', 'value': 1.0}], [])
    """
    if table is None or len(table) == 0:
        return []
    return table.to_dict("records")


def _missing(value) -> bool:
    """Whether a cell holds nothing: None, NaN, or pandas' NA (nullable and Arrow-backed columns).

    >>> import pandas as pd
    >>> _missing(None), _missing(float("nan")), _missing(pd.NA), _missing(""), _missing(float("inf"))
    (True, True, True, False, False)
    """
    if value is None:
        return True
    try:
        return bool(value != value)
    except TypeError:  # pd.NA != pd.NA is NA, which has no truth value
        return True


def _text(value) -> str:
    """A cell of the string columns: "" for a missing value.

    >>> _text(None), _text(float("nan")), _text("cqtai")
    ('', '', 'cqtai')
    """
    return "" if _missing(value) else str(value)


def _finite(value) -> bool:
    """Whether a number can be drawn or ranked (not NaN, not the "identical" +inf).

    >>> _finite(2.5), _finite(float("inf")), _finite(None)
    (True, False, False)
    """
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _flag(value) -> bool:
    """A cell of the bool columns: False for a missing value.

    >>> _flag(True), _flag(float("nan")), _flag(None), _flag(0)
    (True, False, False, False)
    """
    return False if _missing(value) else bool(value)


def _number(value, metric: str = "", *, sign: bool = False) -> str:
    """A number as the tables write it (:func:`~stemlab.analysis.compare.score_text`), "–" when missing.

    >>> _number(2.345, "si_sdr", sign=True), _number(0.01234, "leakage"), _number(float("nan"))
    ('+2.35', '0.012', '–')
    """
    return "–" if _missing(value) else score_text(value, DIGITS.get(metric, 2), sign=sign, silent="–")


def _e(value) -> str:
    """HTML-escaped text of a cell, quotes included (safe in attributes too).

    >>> _e("<script>'x'</script>")
    '&lt;script&gt;&#x27;x&#x27;&lt;/script&gt;'
    """
    return html.escape(_text(value), quote=True)


def _unique(values) -> list:
    """The distinct values, in order of first appearance, blanks left out.

    >>> _unique(["b", "a", "b", "", "c"])
    ['b', 'a', 'c']
    """
    return list(dict.fromkeys(v for v in values if v != ""))


def song_state(states) -> str:
    """A song's state from its providers' rows: failed if any failed, then over budget, then planned;
    done when every row is done.

    >>> song_state(["done", "failed"]), song_state(["over budget", "done"]), song_state(["done", "done"])
    ('failed', 'over budget', 'done')
    """
    states = [_text(s) for s in states]
    for state in ("failed", "over budget", "planned"):
        if state in states:
            return state
    return next((s for s in states if s != "done"), "done")


def verdict(metric: str, low, high, a: str, b: str) -> tuple[str, str]:
    """What an interval of ``a - b`` that excludes 0 says, and its CSS class; ``("", "")`` when it
    holds 0. Leakage is lower-is-better; loudness and residual have no better direction.

    >>> verdict("si_sdr", 0.5, 2.0, "cqtai", "apiframe"), verdict("leakage", 0.01, 0.05, "cqtai", "apiframe")
    (('cqtai better', 'good'), ('apiframe better', 'good'))
    >>> verdict("loudness_db", -3, -1, "cqtai", "apiframe"), verdict("sdr", -1.0, 1.0, "a", "b")
    (('differs (no better direction)', 'neutral'), ('', ''))
    """
    if not (_finite(low) and _finite(high)) or low <= 0 <= high:
        return "", ""
    if metric in NO_DIRECTION:
        return "differs (no better direction)", "neutral"
    a_higher = low > 0
    return f"{a if a_higher != (metric in LOWER_IS_BETTER) else b} better", "good"


def _page(title: str, body: list[str]) -> str:
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><meta name='generator' "
            f"content='stemlab'><title>{_e(title)}</title><style>{PAGE_CSS}{STUDY_CSS}</style></head>"
            f"<body>{''.join(body)}</body></html>")


# ---- 1. the header ---------------------------------------------------------------------------------

def _header(songs: list[dict], title: str) -> str:
    """Counts of songs by state, the providers, the credits spent, and whether there is any truth."""
    by_song: dict[str, list[str]] = {}
    for row in songs:
        by_song.setdefault(_text(row.get("song")), []).append(row.get("state"))
    states = [song_state(s) for s in by_song.values()]
    spent = [row.get("credits") for row in songs if _flag(row.get("submitted"))]
    credits = sum(float(c) for c in spent if _finite(c))
    unknown = sum(1 for c in spent if not _finite(c))
    truth = {_text(row.get("song")) for row in songs if _text(row.get("truth_dir"))}
    providers = _unique(_text(row.get("provider")) for row in songs)

    def fact(key, count, label, bad=False):
        return f"<li data-fact='{key}' class='{'bad' if bad and count else ''}'><b>{count}</b> {_e(label)}</li>"

    facts = [fact("songs", len(by_song), "songs"), fact("done", states.count("done"), "done"),
             fact("failed", states.count("failed"), "failed", bad=True),
             fact("over-budget", states.count("over budget"), "over budget", bad=True)]
    if "planned" in states:
        facts.append(fact("planned", states.count("planned"), "planned (dry run)"))
    facts.append(fact("truth", len(truth), "with true stems"))
    facts.append(f"<li data-fact='credits'><b>{credits:g}</b> credits spent"
                 f"{f' (+ {unknown} jobs of undocumented cost)' if unknown else ''}</li>")
    parts = [f"<h1>{_e(title)}</h1>", f"<ul class='facts'>{''.join(facts)}</ul>",
             f"<p class='lead'>providers: {_e(', '.join(providers)) or '<span class=muted>none</span>'}. "
             "A song counts as failed when any of its providers failed.</p>"]
    if by_song and not truth:
        parts.append("<p class='agreement-only' data-fact='agreement-only'><b>Agreement only:</b> no song has true "
                     "stems, so these numbers say how far the providers agree with each other, not which one is "
                     "right.</p>")
    return "".join(parts)


# ---- 2. the summary table --------------------------------------------------------------------------

def _summary_table(summary: list[dict]) -> str:
    if not summary:
        return "<p class='muted' data-empty='summary'>no paired numbers yet</p>"
    rows = []
    for r in summary:
        metric = _text(r.get("metric"))
        text, cls = verdict(metric, r.get("ci_low"), r.get("ci_high"), _text(r.get("a")), _text(r.get("b")))
        ci = f"[{_number(r.get('ci_low'), metric, sign=True)}, {_number(r.get('ci_high'), metric, sign=True)}]"
        n = int(r["n"]) if _finite(r.get("n")) else 0
        means = "".join(f"<td>{_number(r.get(key), metric, sign=key == 'mean_diff')}</td>"
                        for key in ("mean_a", "mean_b", "mean_diff"))
        rows.append(f"<tr data-metric='{_e(metric)}' data-stem='{_e(r.get('stem'))}' data-a='{_e(r.get('a'))}' "
                    f"data-b='{_e(r.get('b'))}' data-verdict='{_e(text)}'><td>{_e(metric)}</td>"
                    f"<td>{_e(r.get('stem'))}</td><td>{_e(r.get('a'))} − {_e(r.get('b'))}</td>{means}"
                    f"<td>{ci}</td><td>{n}</td><td class='{cls}'>{_e(text)}</td></tr>")
    levels = _unique(f"{float(r['confidence']):.0%}" for r in summary if _finite(r.get("confidence")))
    resamples = _unique(f"{int(r['resamples']):,}" for r in summary if _finite(r.get("resamples")))
    note = (f"Paired over the songs where both providers have a finite, audible number: mean of the differences "
            f"a − b, with a percentile-bootstrap interval ({', '.join(levels) or '?'} confidence, "
            f"{', '.join(resamples) or '?'} resamples). Marked when the interval excludes 0: higher is better, "
            f"except leakage (lower is better); loudness and residual have no better direction.")
    return (f"<p class='note'>{_e(note)}</p><div class='table'><table class='summary'><thead><tr><th>metric</th>"
            "<th>stem</th><th>a − b</th><th>mean a</th><th>mean b</th><th>mean diff</th><th>interval</th><th>n</th>"
            f"<th></th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


# ---- 3. the forest plot ----------------------------------------------------------------------------

def forest_rows(summary: list[dict]) -> list[dict]:
    """The summary rows the forest plot draws: the scores against the truth when there are any, else
    residual and leakage; rows with a mean only, one per (metric, stem, pair) whichever its order.

    >>> rows = [{"metric": m, "stem": "vocals", "a": a, "b": b, "mean_diff": 1.0}
    ...         for m, a, b in (("si_sdr", "x", "y"), ("si_sdr", "y", "x"), ("loudness_db", "x", "y"))]
    >>> [(r["metric"], r["a"]) for r in forest_rows(rows)]
    [('si_sdr', 'x')]
    """
    usable = [r for r in summary if _finite(r.get("mean_diff"))]
    metrics = SCORES if any(r.get("metric") in SCORES for r in usable) else FALLBACK
    seen, out = set(), []
    for metric in metrics:
        for r in usable:
            key = (metric, r.get("stem"), frozenset((r.get("a"), r.get("b"))))
            if r.get("metric") == metric and key not in seen:
                seen.add(key)
                out.append(r)
    return out


def _panels(rows: list[dict]) -> list[list[dict]]:
    """The forest plot's panels: the scores (all dB) together, residual and leakage each alone.

    >>> [[r["metric"] for r in p] for p in _panels([{"metric": "si_sdr"}, {"metric": "sdr"}])]
    [['si_sdr', 'sdr']]
    >>> [[r["metric"] for r in p] for p in _panels([{"metric": "residual_db"}, {"metric": "leakage"}])]
    [['residual_db'], ['leakage']]
    """
    if rows and rows[0]["metric"] in SCORES:
        return [rows]
    return [p for p in ([r for r in rows if r["metric"] == m] for m in FALLBACK) if p]


def _forest_png(rows: list[dict]) -> str:
    """One forest plot: a row per summary row, its mean as a dot and its interval as a bar."""
    unit = "" if rows[0]["metric"] == "leakage" else " (dB)"

    def draw(ax):
        for i, r in enumerate(rows):
            low, high, mean = r.get("ci_low"), r.get("ci_high"), float(r["mean_diff"])
            colour = VERDICT_COLOURS[verdict(r["metric"], low, high, _text(r.get("a")), _text(r.get("b")))[1]]
            if _finite(low) and _finite(high):
                ax.plot([float(low), float(high)], [i, i], color=colour, lw=2, solid_capstyle="butt")
            ax.plot([mean], [i], "o", color=colour, ms=6)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(range(len(rows)), [f"{r['metric']} · {_text(r.get('stem'))} · {_text(r.get('a'))} − "
                                         f"{_text(r.get('b'))}" for r in rows], fontsize=9)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.set_xlabel(f"mean paired difference a − b{unit}, with its interval")
        ax.grid(axis="x", color="#ddd", lw=0.6)

    return figure_png(draw, figsize=(8, 0.32 * len(rows) + 1.2))


def _forest(summary: list[dict]) -> str:
    rows = forest_rows(summary)
    if not rows:
        return "<p class='muted' data-empty='forest'>no paired numbers yet</p>"
    note = ("the scores against the true stems" if rows[0]["metric"] in SCORES
            else "no scores against true stems: residual and leakage")
    figures = "".join(f"<div class='figure' data-figure='forest'>{_forest_png(panel)}</div>" for panel in _panels(rows))
    return (f"<p class='note'>{_e(note)}; green marks an interval that excludes 0 in favour of one provider, "
            f"purple one that excludes 0 where neither direction is better, grey one that holds 0.</p>{figures}")


# ---- 4. strip plots --------------------------------------------------------------------------------

def strip_metrics(results: list[dict]) -> list[str]:
    """The metrics that get a strip plot: the scores against the truth that have numbers (at most
    :data:`STRIPS`), else the agreement of the providers.

    >>> strip_metrics([{"metric": "agreement_si_sdr", "value": 3.0}, {"metric": "sdr", "value": 1.0}])
    ['sdr']
    >>> strip_metrics([{"metric": "agreement_si_sdr", "value": 3.0}, {"metric": "sdr", "value": float("nan")}])
    ['agreement_si_sdr']
    """
    present = {r.get("metric") for r in results if _finite(r.get("value"))}
    scores = [m for m in SCORES if m in present][:STRIPS]
    return scores or ([AGREEMENT] if AGREEMENT in present else [])


def _plural(count: int, word: str) -> str:
    """>>> _plural(1, "number"), _plural(3, "number")
    ('1 number', '3 numbers')
    """
    return f"{count} {word}{'' if count == 1 else 's'}"


def _strip(results: list[dict], metric: str, colours: dict[str, str]) -> str:
    """A strip plot of one metric: a column of dots per stem group and provider, a dot per song."""
    import numpy as np

    rows = [r for r in results if r.get("metric") == metric]
    drawn = [r for r in rows if _finite(r.get("value")) and not _flag(r.get("silent"))]
    identical = sum(1 for r in rows if not _missing(r.get("value")) and float(r["value"]) == math.inf)
    stems = _unique(_text(r.get("stem")) for r in drawn)
    who = _unique(_text(r.get("provider")) for r in drawn)
    jitter = np.random.default_rng(0)  # the same page every time
    width = 0.8 / max(len(who), 1)

    def draw(ax):
        for j, provider in enumerate(who):
            mine = [r for r in drawn if _text(r.get("provider")) == provider]
            x = [stems.index(_text(r.get("stem"))) + (j - (len(who) - 1) / 2) * width for r in mine]
            x = np.asarray(x) + jitter.uniform(-width / 4, width / 4, len(mine))
            ax.plot(x, [float(r["value"]) for r in mine], "o", ms=5, alpha=0.75, color=colours[provider],
                    label=provider)
        ax.set_xticks(range(len(stems)), stems)
        ax.set_xlim(-0.6, len(stems) - 0.4)
        ax.set_ylabel(f"{metric} (dB)")
        ax.grid(axis="y", color="#ddd", lw=0.6)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)

    what = ("one provider's group scored against another's (both directions)" if metric == AGREEMENT
            else "against the true stems, higher is better")
    notes = [f"{_plural(len(drawn), 'number')}, a dot per song, {what}"]
    if identical:
        notes.append(f"{identical} identical (+inf) not drawn")
    return (f"<div class='figure' data-figure='strip-{_e(metric)}'><h3>{_e(metric)}</h3>"
            f"<p class='note'>{_e('; '.join(notes))}.</p>"
            f"{figure_png(draw, figsize=(max(3.0, 1.1 * len(stems) + 1.5), 2.8))}</div>")


def _strips(results: list[dict], providers: list[str]) -> str:
    metrics = strip_metrics(results)
    if not metrics:
        return "<p class='muted' data-empty='strips'>no numbers yet</p>"
    who = _unique([*providers, *(_text(r.get("provider")) for r in results if r.get("metric") in metrics)])
    colours = {provider: COLOURS[i % len(COLOURS)] for i, provider in enumerate(who)}  # the same in every plot
    return f"<div class='strips'>{''.join(_strip(results, metric, colours) for metric in metrics)}</div>"


# ---- 5. where the providers disagree most ----------------------------------------------------------

@dataclass(frozen=True)
class Disagreement:
    """One song the providers disagree on: its worst stem group and pair, and the given numbers."""

    song: str
    stem: str
    a: str
    b: str
    metric: str
    value_a: float  # si_sdr: a's score; agreement: a's scored against b's
    value_b: float  # si_sdr: b's score; agreement: b's scored against a's (NaN when absent)

    @property
    def rank_key(self) -> float:
        """How strongly it disagrees: |a - b| against the truth, minus the lowest agreement otherwise."""
        if self.metric == AGREEMENT:
            return -min(v for v in (self.value_a, self.value_b) if _finite(v))
        return abs(self.value_a - self.value_b)


def _truth_candidates(results: list[dict]) -> list[Disagreement]:
    """Every (song, stem, pair of providers) with finite, audible SI-SDR against the truth for both."""
    values: dict[tuple[str, str], dict[str, float]] = {}
    for r in results:
        provider = _text(r.get("provider"))
        usable = _finite(r.get("value")) and not _flag(r.get("silent"))
        if r.get("metric") == "si_sdr" and " vs " not in provider and usable:
            values.setdefault((_text(r.get("song")), _text(r.get("stem"))), {}).setdefault(provider, float(r["value"]))
    return [Disagreement(song, stem, a, b, "si_sdr", by[a], by[b])
            for (song, stem), by in values.items() for a, b in combinations(by, 2)]


def _agreement_candidates(results: list[dict]) -> list[Disagreement]:
    """Every (song, stem, pair) with a finite, audible agreement number in either direction."""
    values: dict[tuple[str, str, str, str], float] = {}
    for r in results:
        a, _, b = _text(r.get("provider")).partition(" vs ")
        if r.get("metric") == AGREEMENT and b and _finite(r.get("value")) and not _flag(r.get("silent")):
            values.setdefault((_text(r.get("song")), _text(r.get("stem")), a, b), float(r["value"]))
    out, seen = [], set()
    for (song, stem, a, b), value in values.items():
        if (song, stem, b, a) in seen:
            continue  # the pair once, with both directions, in the order met first
        seen.add((song, stem, a, b))
        out.append(Disagreement(song, stem, a, b, AGREEMENT, value, values.get((song, stem, b, a), math.nan)))
    return out


def disagreements(results, *, most: int = MOST) -> list[Disagreement]:
    """The songs (at most ``most``, each once) the providers disagree on most: by the largest
    absolute difference of their SI-SDR against the true stems when any song has them (songs
    without true stems then stay out), else by the lowest agreement SI-SDR of a pair.

    >>> rows = [{"song": s, "provider": p, "stem": "vocals", "metric": "si_sdr", "value": v}
    ...         for s, p, v in (("a", "x", 9.0), ("a", "y", 8.0), ("b", "x", 9.0), ("b", "y", 2.0))]
    >>> [(d.song, d.rank_key) for d in disagreements(rows)]
    [('b', 7.0), ('a', 1.0)]
    """
    rows = results if isinstance(results, list) else _rows(results)
    candidates = _truth_candidates(rows) or _agreement_candidates(rows)
    best: dict[str, Disagreement] = {}
    for d in candidates:
        if d.song not in best or d.rank_key > best[d.song].rank_key:
            best[d.song] = d
    return sorted(best.values(), key=lambda d: -d.rank_key)[:most]


def _group_stems(names: list[str], group: str) -> list[str]:
    """The stems of a set that make up a stem group (every stem when the group's name says nothing).

    >>> _group_stems(["vocals", "backing_vocals", "drums", "bass"], "instrumental")
    ['drums', 'bass']
    >>> _group_stems(["vocals", "instrumental"], "vocals"), _group_stems(["drums", "other"], "mix")
    (['vocals'], ['drums', 'other'])
    """
    members = GROUPS.get(group) or (group.split("+") if all(n in TWELVE_STEMS for n in group.split("+")) else None)
    picked = stems_in_group(names, frozenset(members)) if members else [n for n in names if n == group]
    return picked or list(names)


def _href(path: Path, out_dir: Path) -> str:
    """The link from the page in ``out_dir`` to ``path``: relative, URL-quoted.

    >>> _href(Path("/c/sets/k 1/stems/vocals.mp3"), Path("/c/study"))
    '../sets/k%201/stems/vocals.mp3'
    """
    try:
        relative = os.path.relpath(path, out_dir)
    except ValueError:  # another drive (Windows)
        return Path(path).resolve().as_uri()
    return quote(relative.replace(os.sep, "/"))


def _set_players(row: dict | None, stem: str, out_dir: Path) -> str:
    """Players for a provider's set of one song: its source and the stems of group ``stem``."""
    missing = "<span class='muted' data-missing='1'>not in the cache</span>"
    folder = Path(_text(row.get("folder"))) if row and _text(row.get("folder")) else None
    try:
        manifest = read_record(folder / MANIFEST) if folder is not None and folder.is_dir() else None
    except CacheError:
        manifest = None
    if manifest is None:
        return missing
    stems = [s for s in manifest.get("stems") or [] if isinstance(s, dict) and isinstance(s.get("path"), str)]
    picked = _group_stems([_text(s.get("name")) for s in stems], stem)
    entries = [("source", manifest["source"]["path"])] if isinstance(manifest.get("source"), dict) and isinstance(
        manifest["source"].get("path"), str) else []
    entries += [(_text(s.get("name")), s["path"]) for s in stems if _text(s.get("name")) in picked]
    figures = []
    for name, relative in entries:
        path = folder / relative
        player = audio_player(src=_href(path, out_dir), title=name) if path.is_file() else missing
        figures.append(f"<figure>{player}<figcaption>{_e(name)}</figcaption></figure>")
    return "".join(figures) or missing


def _disagreement_item(d: Disagreement, songs: list[dict], out_dir: Path) -> str:
    if d.metric == AGREEMENT:
        back = f", {_e(d.b)} against {_e(d.a)} {_number(d.value_b)} dB" if _finite(d.value_b) else ""
        numbers = f"agreement SI-SDR: {_e(d.a)} against {_e(d.b)} {_number(d.value_a)} dB{back}"
    else:
        numbers = (f"SI-SDR against the true stems: {_e(d.a)} {_number(d.value_a)} dB, {_e(d.b)} "
                   f"{_number(d.value_b)} dB (a − b {_number(d.value_a - d.value_b, sign=True)})")
    sets = []
    for provider in (d.a, d.b):
        row = next((r for r in songs if _text(r.get("song")) == d.song and _text(r.get("provider")) == provider), None)
        label = _text(row.get("set")) if row else ""
        label = provider + (f" ({label})" if label not in ("", provider) else "")
        sets.append(f"<div class='set' data-provider='{_e(provider)}'><b>{_e(label)}</b>"
                    f"{_set_players(row, d.stem, out_dir)}</div>")
    return (f"<li data-song='{_e(d.song)}' data-stem='{_e(d.stem)}'><b>{_e(d.song)}</b>, {_e(d.stem)}: {numbers}"
            f"<div class='players'>{''.join(sets)}</div></li>")


def _disagreement_list(results: list[dict], songs: list[dict], out_dir: Path) -> str:
    found = disagreements(results)
    if not found:
        return "<p class='muted' data-empty='disagree'>no song has numbers of two providers yet</p>"
    if found[0].metric == AGREEMENT:
        how = "ranked by the lowest agreement SI-SDR of a pair of providers over the song's stem groups"
    else:
        how = ("ranked by the largest difference of two providers' SI-SDR against the true stems over the song's "
               "stem groups (songs without true stems are not ranked)")
    note = (f"{how}. The players link to each provider's cached files: the set's source and the stems that make "
            f"up the group (every stem when the group's name does not tell). Nothing is embedded; they play when "
            f"the page sits where it was written, next to the cache.")
    return (f"<p class='note'>{_e(note)}</p><ol class='disagree'>"
            f"{''.join(_disagreement_item(d, songs, out_dir) for d in found)}</ol>")


# ---- 6. failures -----------------------------------------------------------------------------------

def _failures(songs: list[dict]) -> str:
    bad = [r for r in songs if _text(r.get("state")) in ("failed", "over budget")]
    if not bad:
        return "<p class='muted' data-empty='failed'>none</p>"
    rows = "".join(f"<tr data-song='{_e(r.get('song'))}'><td>{_e(r.get('song'))}</td><td>{_e(r.get('provider'))}</td>"
                   f"<td>{_e(r.get('state'))}</td><td class='error'>{_e(r.get('error'))}</td></tr>" for r in bad)
    return ("<div class='table'><table class='failed'><thead><tr><th>song</th><th>provider</th><th>state</th>"
            f"<th>error</th></tr></thead><tbody>{rows}</tbody></table></div>")


# ---- the page --------------------------------------------------------------------------------------

def render_study_report(out_dir, *, results, songs, summary, title: str = "stemlab study") -> str:
    """The page (see the module docstring), its audio linked relative to ``out_dir``.

    >>> import pandas as pd
    >>> page = render_study_report(".", results=pd.DataFrame(), songs=pd.DataFrame(), summary=pd.DataFrame())
    >>> "no paired numbers yet" in page, "https://" in page
    (True, False)
    """
    out_dir = Path(out_dir).resolve()
    results, songs, summary = _rows(results), _rows(songs), _rows(summary)
    body = [_header(songs, title),
            "<h2>Paired differences</h2>", _summary_table(summary), _forest(summary),
            "<h2>Per song</h2>", _strips(results, _unique(_text(r.get("provider")) for r in songs)),
            "<h2>Where the providers disagree most</h2>", _disagreement_list(results, songs, out_dir),
            "<h2>Failed songs</h2>", _failures(songs)]
    return _page(title, body)


def write_study_report(out_dir, *, results, songs, summary, title: str = "stemlab study") -> Path:
    """Write ``out_dir/report.html`` atomically (see :func:`render_study_report`); return its path."""
    page = render_study_report(out_dir, results=results, songs=songs, summary=summary, title=title)
    return atomic_write_bytes(Path(out_dir) / "report.html", page.encode("utf-8"), durable=False)
