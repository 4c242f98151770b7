"""A self-contained HTML report of several stem sets: one synced player first, then the numbers.

The page opens on the player (a :class:`~stemlab.view.widget.StemView`) beside a list of the
sets, each with its verdict in one line. Choosing a set puts it on the player at the same
position, playing on, so any set can be A/B'd against the true stems (one button) or against
its own source (the player's A/B switch). The scores table and each set's recombination check
follow; a check's plot is shown only when something is off.

The audio is Ogg Opus (Web Audio decodes it in Chromium, Firefox and recent Safari), each distinct
file embedded once, at a bitrate chosen so the audio fits :data:`AUDIO_BUDGET`; silent stems get
no player. Nothing is fetched when the page is viewed; it works from ``file://``.

>>> page = render_report("Demo", sections=[section("true stems", song, check(song))])   # doctest: +SKIP
>>> page.size_bytes < 10e6, page.audio_kbps                                              # doctest: +SKIP
(True, 40)
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from ..analysis.compare import score_text
from ..files import sha256_of
from .html import PAGE_CSS
from .scene import player_state
from .standalone import Scene, player_parts
from .tracks import prepare_tracks, tracks_of

__all__ = ["Section", "section", "Report", "render_report", "score_of", "scores_line", "verdict_text", "AUDIO_BUDGET"]

AUDIO_BUDGET = 8_000_000  # bytes of embedded audio (base64), so the demo's page stays under 10 MB
KBPS_RANGE = (24, 96)  # Opus kbit/s: 24 is still clean speech and decent music, 96 is transparent
HERE = Path(__file__).parent
COLUMNS, ROWS = 800, 56  # each row's waveform columns and spectrogram bins in the page

# The set list and the A/B-with-the-truth button drive the page's player (standalone.py's shim).
PAGE_JS = """
const page = () => globalThis.__stemlabPage;
const buttons = [...document.querySelectorAll(".sets button[data-scene]")];
const truth = Number(document.querySelector(".listen").dataset.truth);
const label = document.getElementById("now-playing");
const ab = document.getElementById("ab-truth");
let before = null; // the set to return to from the truth
const mark = (index) => {
  buttons.forEach((b) => b.setAttribute("aria-pressed", String(Number(b.dataset.scene) === index)));
  label.textContent = page().scenes[index];
  ab.textContent = index === truth ? (before === null ? "A/B: choose a set first" : `back to ${page().scenes[before]}`)
    : "A/B with the true stems";
  ab.disabled = index === truth && before === null;
};
document.addEventListener("stemlab:scene", (event) => mark(event.detail.index));
buttons.forEach((b) => b.addEventListener("click", () => { before = null; page().show(Number(b.dataset.scene)); }));
ab.addEventListener("click", () => {
  const now = page().current();
  if (now === truth && before !== null) { const back = before; before = null; page().show(back); }
  else if (now !== truth) { before = now; page().show(truth); }
});
let tries = 0;
const ready = setInterval(() => {
  if (page() || ++tries > 600) clearInterval(ready);  // the player is up (or, after 30 s, never will be)
  if (page()) mark(page().current());
}, 50);
"""


@dataclass
class Section:
    """One stem set in a report: its check and its scores against the truth (if any)."""

    title: str
    stemset: object
    check: object | None = None
    description: str = ""
    scores: list[dict] = field(default_factory=list)


def section(title: str, stemset, check=None, *, description: str = "", scores=()) -> Section:
    return Section(title, stemset, check, description, list(scores))


@dataclass(frozen=True)
class Report:
    """The page, and the audio that went into it."""

    html: str
    audio_kbps: int
    audio_bytes: int  # the distinct files embedded, before base64

    @property
    def size_bytes(self) -> int:
        return len(self.html.encode("utf-8"))


def score_of(row: dict, key: str = "si_sdr_improvement") -> str:
    """A score from a row of :meth:`~stemlab.analysis.compare.Comparison.scores`, as the report
    and the demo print it: "identical" for a stem identical to the truth (never the huge finite
    number an SI-SDR of identical signals can come out as), else signed dB.

    >>> score_of({"identical": True, "si_sdr_improvement": 156.5}), score_of({"identical": False, "si_sdr_improvement": 3.04})
    ('identical', '+3.0')
    """
    if row.get("identical"):
        return "identical"
    value = row[key]
    return "" if value is None else score_text(value, 1, sign=True, silent="")


def scores_line(scores: list[dict]) -> str:
    """How far each audible stem improves on the mix, in one line ("" without scores).

    >>> scores_line([{"stem": "drums", "silent": False, "identical": False, "si_sdr_improvement": 4.81}])
    'drums +4.8'
    """
    audible = [row for row in scores if not row["silent"]]
    if audible and all(row["identical"] for row in audible):
        return f"identical to the truth ({len(audible)} audible)"
    return ", ".join(f"{row['stem']} {score_of(row)}" for row in audible)


def verdict_text(sec: Section) -> str:
    """One line: whether the set recombines, and how far each audible stem improves on the mix."""
    if sec.check is not None and not sec.check.ok:
        problem = sec.check.problems[0] if sec.check.problems else "see its check"
        return f"does NOT recombine: {problem}"
    line = scores_line(sec.scores)
    return "recombines" + (f"; {line}" if line.startswith("identical") else f"; vs the mix (dB): {line}" if line else "")


def _scores_table(sections: Sequence[Section]) -> str:
    rows = []
    for sec in sections:
        for row in sec.scores:
            improvement = row["si_sdr_improvement"]
            cls = "muted" if row["silent"] else ("good" if row["identical"] or improvement > 0 else "bad")
            note = "silent" if row["silent"] else ("the sandbox served the true stems" if row["identical"] else "")
            rows.append(f"<tr><td>{html.escape(sec.title)}</td><td>{html.escape(row['stem'])}</td>"
                        f"<td>{score_of(row, 'si_sdr')}</td><td class='{cls}'>{score_of(row)}</td>"
                        f"<td class='muted'>{note}</td></tr>")
    if not rows:
        return ""
    return ("<div class='table'><table><thead><tr><th>set</th><th>stem</th><th>SI-SDR (dB)</th>"
            f"<th>improvement over the mix (dB)</th><th></th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def _players(sections: Sequence[Section]) -> list[list[tuple[object, object, str]]]:
    """Per section, ``(track, stem, sha256 of its file)`` for the source and every audible stem
    (prepared)."""
    out = []
    for sec in sections:
        pairs = list(zip(tracks_of(sec.stemset), sec.stemset.tracks()))
        prepare_tracks([track for track, _ in pairs])
        playable = [(track, stem) for track, stem in pairs if track.kind == "source" or not track.silent]
        out.append([(track, stem, sha256_of(stem.path)) for track, stem in playable or pairs])  # all silent: all
    return out


def _kbps(seconds: float) -> int:
    """The Opus bitrate that puts ``seconds`` of distinct audio within :data:`AUDIO_BUDGET`."""
    fit = AUDIO_BUDGET * 3 / 4 * 8 / 1000 / max(seconds, 1.0)  # base64 carries 3 bytes in 4
    return int(min(max(fit, KBPS_RANGE[0]), KBPS_RANGE[1]))


def _encode(players, progress: Callable[[float], None], share: float) -> tuple[dict[str, Path], int]:
    """Opus files of every distinct source file (by content), cached in each stem's ``derived/``."""
    from ..encode import encode_files

    first: dict[str, object] = {}
    for rows in players:
        for track, stem, digest in rows:
            first.setdefault(digest, (track, stem))
    kbps = _kbps(sum(track.audio.shape[1] / track.sr for track, _ in first.values()))
    targets = {digest: stem.derived_path(f"player-opus{kbps}", ".opus") for digest, (_, stem) in first.items()}
    jobs = [(stem.path, targets[digest]) for digest, (_, stem) in first.items() if not targets[digest].exists()]
    done = [0]

    def finished(_target):
        done[0] += 1
        progress(share * done[0] / max(len(jobs), 1))

    encode_files(jobs, codec="opus", kbps=kbps, on_done=finished)
    return targets, kbps


def render_report(title: str, *, sections: Sequence[Section], intro_html: str = "", truth: int = 0,
                  progress: Callable[[float], None] | None = None) -> Report:
    """The whole report (see the module docstring). ``sections[truth]`` is the set the A/B button
    compares with; ``progress(fraction)`` is told how far the work is, from 0 to 1."""
    progress = progress or (lambda fraction: None)
    players = _players(sections)
    progress(0.2)
    targets, kbps = _encode(players, progress=lambda f: progress(0.2 + f), share=0.6)
    scenes = []
    for i, (sec, rows) in enumerate(zip(sections, players)):
        state = player_state([track for track, _, _ in rows], columns=COLUMNS, rows=ROWS)
        scenes.append(Scene(sec.title, state, [targets[digest].read_bytes() for _, _, digest in rows]))
        progress(0.8 + 0.2 * (i + 1) / len(sections))
    parts = player_parts(scenes, esm=HERE.joinpath("stemview.js").read_text(encoding="utf-8"),
                         css=HERE.joinpath("stemview.css").read_text(encoding="utf-8"))
    distinct = len(targets)
    audio_bytes = sum(p.stat().st_size for p in targets.values())

    buttons = "".join(
        f"<button type='button' data-scene='{i}' aria-pressed='{str(i == 0).lower()}'>"
        f"<b>{html.escape(sec.title)}</b><span class='{'bad' if sec.check is not None and not sec.check.ok else ''}'>"
        f"{html.escape(verdict_text(sec))}</span></button>" for i, sec in enumerate(sections))
    silent = [[s.name for s in sec.stemset if s.name not in {stem.name for _, stem, _ in rows}]
              for sec, rows in zip(sections, players)]
    body = [f"<h1>{html.escape(title)}</h1>", f"<div class='lead'>{intro_html}</div>",
            f"<section class='listen' data-truth='{truth}'><div><div class='abbar'>on the player: "
            f"<b id='now-playing'>{html.escape(sections[0].title)}</b><button type='button' id='ab-truth'>"
            f"A/B with the true stems</button><span class='note'>keeps the position; the player's own A/B "
            f"switch compares the stems with their source</span></div>{parts.root}</div>"
            f"<div class='sets' aria-label='stem sets'>{buttons}</div></section>",
            f"<p class='note'>Audio: Ogg Opus at {kbps} kbit/s (48 kHz), {distinct} distinct files embedded once "
            f"({audio_bytes / 1e6:.1f} MB); silent stems have no player. Scores and checks are computed on the "
            f"original files, not on this audio.</p>"]
    table = _scores_table(sections)
    if table:
        body += ["<h2>Scores against the true stems</h2>",
                 "<p class='note'>SI-SDR of each stem (summed into the groups a set has in common with the true "
                 "stems) and its improvement over using the mix itself as the estimate. Higher is better; "
                 "<i>oracle</i> masks are the best any masking method can do on this mix. Listen too: the same "
                 "score can sound very different.</p>", table]
    body.append("<h2>The sets</h2>")
    for sec, quiet in zip(sections, silent):
        body.append(f"<h3>{html.escape(sec.title)}</h3>")
        if sec.description:
            body.append(f"<p class='note'>{html.escape(sec.description)}</p>")
        line = f"{len(sec.stemset)} stems; {verdict_text(sec)}"
        if quiet:
            line += f"; silent: {', '.join(quiet)}"
        body.append(f"<p>{html.escape(line)}</p>")
        if sec.check is not None:
            from .check_view import html as check_html

            body.append(f"<details{' open' if not sec.check.ok else ''}><summary>its recombination check"
                        f"</summary><div class='table'>{check_html(sec.check, picture=not sec.check.ok)}</div>"
                        f"</details>")
    page = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><meta name='generator' "
            f"content='stemlab'><title>{html.escape(title)}</title><style>{PAGE_CSS}</style>{parts.css}</head>"
            f"<body>{''.join(body)}{parts.scripts}<script type='module'>{PAGE_JS}</script></body></html>")
    return Report(page, kbps, audio_bytes)
