"""How a :class:`~stemlab.stemset.StemSet` and a :class:`~stemlab.stemset.Stem` show in a notebook.

>>> s = stemlab.demo_song(); s                                         # doctest: +SKIP
"""

from __future__ import annotations

import html as _html

from .html import audio_player

__all__ = ["html", "REPR_EMBED_LIMIT"]

REPR_EMBED_LIMIT = 8 * 1024 * 1024  # bytes of MP3 a StemSet's notebook repr embeds at most
MP3_BYTES_PER_SECOND = 16_000      # ~128 kbit/s, to estimate MP3s not encoded yet
PLAYER_STYLE = "height:28px;width:260px"


def html(item) -> str:
    """A player for a :class:`Stem`; for a :class:`StemSet`, a table of its tracks with players
    (omitted, with a note, when they would weigh more than :data:`REPR_EMBED_LIMIT`)."""
    if not hasattr(item, "names"):  # a Stem
        return audio_player(item.mp3_bytes(), title=item.name, style=PLAYER_STYLE)
    stemset = item
    tracks = stemset.tracks()
    total = sum(t.mp3_path.stat().st_size if t.mp3_path.exists() else t.duration * MP3_BYTES_PER_SECOND
                for t in tracks)
    embed = total <= REPR_EMBED_LIMIT
    rows = []
    for track in tracks:
        stated = f"{track.stated_duration:.2f}" if track.stated_duration is not None else ""
        player = audio_player(track.mp3_bytes(), title=track.name, style=PLAYER_STYLE) if embed else ""
        weight = "font-weight:bold;" if track is stemset.source else ""
        rows.append(f"<tr><td style='{weight}text-align:left'>{_html.escape(track.name)}</td>"
                    f"<td style='text-align:left'>{_html.escape(str(track.label))}</td>"
                    f"<td>{track.duration:.2f}</td><td>{stated}</td><td>{player}</td></tr>")
    if stemset.source_error:
        rows.insert(0, f"<tr><td style='font-weight:bold;text-align:left'>source</td><td colspan='4' "
                       f"style='text-align:left'>not downloaded: {_html.escape(stemset.source_error)}</td></tr>")
    note = ("" if embed else f"<p>Players omitted: {total / 1e6:.0f} MB of audio is too much to embed in a "
            "notebook. Use <code>stemlab.explore(s)</code> to listen.</p>")
    origin = _html.escape(f"{stemset.provider or 'files'}" + (f" · job {stemset.job_id}" if stemset.job_id else ""))
    return (f"<div><b>StemSet</b> · {len(stemset)} stems · {origin} · {stemset.sr} Hz"
            f"<table><thead><tr><th>stem</th><th>label</th><th>duration (s)</th><th>stated (s)</th>"
            f"<th>listen</th></tr></thead><tbody>{''.join(rows)}</tbody></table>{note}</div>")
