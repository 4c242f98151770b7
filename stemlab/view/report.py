"""A self-contained HTML report of several stem sets: players, pictures, checks and scores.

Everything is inside the one file: pictures as PNG data, audio as MP3 bytes (each distinct file
once, played through ``blob:`` URLs), the synced stem player of the reference set as an embedded
page. Nothing is fetched when it is viewed; it works from ``file://``.

>>> html = render_report("Demo", sections=[section("true stems", song, check(song))])   # doctest: +SKIP
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
from dataclasses import dataclass, field
from typing import Sequence

from ..dsp import is_silent
from .html import audio_player
from .rows import compute_rows
from .snapshot import snapshot_png
from .spectrogram import colormap_lut
from .tracks import prepare_tracks, tracks_of

__all__ = ["Section", "section", "render_report"]

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px auto; max-width: 1100px;
       color: #1f2328; padding: 0 16px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; }
h3 { font-size: 15px; margin-bottom: 4px; }
table { border-collapse: collapse; margin: 8px 0; } td, th { padding: 2px 10px; text-align: right; }
th { border-bottom: 1px solid #bbb; } td:first-child, th:first-child { text-align: left; }
.bad { color: #b03a2e; font-weight: 600; } .good { color: #1e8449; } .muted { color: #888; }
.players { display: flex; flex-wrap: wrap; gap: 6px 18px; margin: 6px 0 14px; }
.players div { display: flex; align-items: center; gap: 6px; } .players span { min-width: 110px; }
audio { height: 28px; width: 220px; } img.rows { max-width: 100%; border: 1px solid #eee; }
iframe.player { width: 100%; border: 1px solid #ddd; border-radius: 4px; }
.note { color: #555; font-size: 13px; }
"""

# Gives every <audio data-mp3="key"> a blob: URL made from the embedded MP3 with that key.
AUDIO_JS = """
for (const tag of document.querySelectorAll("script[data-mp3-key]")) {
  const raw = atob(tag.textContent.trim());
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  const url = URL.createObjectURL(new Blob([bytes], { type: "audio/mpeg" }));
  for (const audio of document.querySelectorAll(`audio[data-mp3="${tag.dataset.mp3Key}"]`)) audio.src = url;
}
"""


@dataclass
class Section:
    """One stem set in a report."""

    title: str
    stemset: object
    check: object | None = None
    description: str = ""
    scores: list[dict] = field(default_factory=list)
    player_html: str | None = None  # an embedded interactive page (e.g. the reference set's explorer)


def section(title: str, stemset, check=None, *, description: str = "", scores=(), player_html=None) -> Section:
    return Section(title, stemset, check, description, list(scores), player_html)


def _fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return "identical" if value == math.inf else f"{value:+.1f}"


def _scores_table(sections: Sequence[Section]) -> str:
    rows = []
    for sec in sections:
        for row in sec.scores:
            improvement = row["si_sdr_improvement"]
            cls = "muted" if row["silent"] else ("good" if improvement > 0 else "bad")
            note = ("silent" if row["silent"] else
                    "identical to the truth (the sandbox served the true stems)" if row["identical"] else "")
            rows.append(f"<tr><td>{html.escape(sec.title)}</td><td>{html.escape(row['stem'])}</td>"
                        f"<td>{_fmt(row['si_sdr'])}</td><td class='{cls}'>{_fmt(improvement)}</td>"
                        f"<td class='muted'>{note}</td></tr>")
    if not rows:
        return ""
    return ("<table><thead><tr><th>set</th><th>stem</th><th>SI-SDR (dB)</th><th>improvement over the mix (dB)</th>"
            f"<th></th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _picture(stemset, *, columns: int = 800) -> str:
    tracks = tracks_of(stemset)
    prepare_tracks(tracks)
    rows = compute_rows(tracks, 0.0, stemset.duration, columns=columns, rows=48)
    png = snapshot_png([t.name for t in tracks], waves=rows.waves, specs=rows.displays, colormap=colormap_lut(),
                       silent=[t.silent for t in tracks], width=columns + 110, row_height=22)
    return f"<img class='rows' alt='waveforms and spectrograms' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"


def _silent(track) -> bool:
    return is_silent(track.audio)


def _encode_players(sections: Sequence[Section]) -> dict[int, bytes]:
    """MP3 bytes of every track that gets a player. Missing MP3s are encoded in parallel processes,
    once per distinct file (the local sets all share the same source, for instance)."""
    from ..files import sha256_of
    from ..encode import encode_files

    tracks = [t for sec in sections if sec.player_html is None
              for t in sec.stemset.tracks()
              if t.name == "source" or not _silent(t)]
    content = {id(t): sha256_of(t.path) for t in tracks if not t.mp3_path.exists()}
    first: dict[str, object] = {}  # one track per distinct file
    for t in tracks:
        if id(t) in content:
            first.setdefault(content[id(t)], t)
    encode_files([(t.path, t.mp3_path) for t in first.values()])
    return {id(t): (first[content[id(t)]] if id(t) in content else t).mp3_bytes() for t in tracks}


def render_report(title: str, *, sections: Sequence[Section], intro_html: str = "") -> str:
    """The whole report page (see the module docstring)."""
    audio: dict[str, bytes] = {}
    encoded = _encode_players(sections)
    body = [f"<h1>{html.escape(title)}</h1>", intro_html]
    table = _scores_table(sections)
    if table:
        body += ["<h2>Scores against the true stems</h2>",
                 "<p class='note'>SI-SDR of each stem (summed into the groups a set has in common with the true "
                 "stems) and its improvement over using the mix itself as the estimate. Higher is better; "
                 "<i>oracle</i> masks are the best any masking method can do on this mix. Listen too: the same "
                 "score can sound very different.</p>", table]
    body.append("<h2>The sets</h2>")
    for sec in sections:
        s = sec.stemset
        body.append(f"<h3>{html.escape(sec.title)}</h3>")
        if sec.description:
            body.append(f"<p class='note'>{html.escape(sec.description)}</p>")
        if sec.player_html is not None:
            height = 110 + 50 * (len(s) + 1)
            body.append(f"<iframe class='player' style='height:{height}px' sandbox='allow-scripts' "
                        f"srcdoc=\"{html.escape(sec.player_html, quote=True)}\"></iframe>")
        else:
            body.append(_picture(s))
            players = []
            for track in s.tracks():
                if track.name != "source" and _silent(track):
                    players.append(f"<div><span>{html.escape(track.name)}</span><i class='muted'>silent</i></div>")
                    continue
                data = encoded[id(track)]
                key = hashlib.sha256(data).hexdigest()[:16]
                audio.setdefault(key, data)
                players.append(f"<div><span>{html.escape(track.name)}</span>{audio_player(title=track.name, key=key)}"
                               f"</div>")
            body.append(f"<div class='players'>{''.join(players)}</div>")
        if sec.check is not None:
            body.append(sec.check._repr_html_())
    scripts = "".join(f"<script type='application/octet-stream' data-mp3-key='{key}'>"
                      f"{base64.b64encode(data).decode('ascii')}</script>" for key, data in audio.items())
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='generator' content='stemlab'>"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>{''.join(body)}{scripts}"
            f"<script>{AUDIO_JS}</script></body></html>")
