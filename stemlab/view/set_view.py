"""How a :class:`~stemlab.stemset.StemSet` and a :class:`~stemlab.stemset.Stem` show in a notebook.

A table of the tracks (a player for a Stem), whose players play through the kernel
(:class:`~stemlab.view.players.PlayerWidget`): no audio goes into the notebook, however long the
song. Opened without a kernel, the table stays and the players say to re-run the cell. To embed
the audio in the notebook instead (larger files, plays anywhere):
``stemlab.listen(*s.tracks(), embed=True)``.

>>> s = stemlab.demo_song(); s                                         # doctest: +SKIP
"""

from __future__ import annotations

import html as _html
from typing import Callable

from .html import audio_player
from .players import NOTE, RERUN, PlayerWidget, outputs, show

__all__ = ["html", "display", "widget"]

PLAYER_STYLE = "height:28px;width:260px"


def html(item) -> str:
    """The table (or a Stem's name) without players: the still shown where widgets cannot render."""
    return _markup(item, lambda _key, _track: "", RERUN)


def display(item) -> None:
    """Show ``item`` in the notebook: the still, then :func:`widget` (which hides the still)."""
    show(outputs(widget(item), html(item), text=repr(item)))


def widget(item) -> PlayerWidget:
    """The table with a player per track, playing through the kernel."""
    tracks = [item] if not hasattr(item, "names") else item.tracks()
    audio = {str(i): track.mp3_bytes for i, track in enumerate(tracks)}  # read when a page asks

    def player(key, track):
        return audio_player(key=key, title=track.name, style=PLAYER_STYLE)

    return PlayerWidget(html=_markup(item, player, NOTE), audio=audio)


def _markup(item, player: Callable[[str, object], str], note: str) -> str:
    if not hasattr(item, "names"):  # a Stem
        return f"<div><b>{_html.escape(item.name)}</b> {player('0', item)} {note}</div>"
    stemset = item
    rows = []
    for i, track in enumerate(stemset.tracks()):
        stated = f"{track.stated_duration:.2f}" if track.stated_duration is not None else ""
        weight = "font-weight:bold;" if track is stemset.source else ""
        rows.append(f"<tr><td style='{weight}text-align:left'>{_html.escape(track.name)}</td>"
                    f"<td style='text-align:left'>{_html.escape(str(track.label))}</td>"
                    f"<td>{track.duration:.2f}</td><td>{stated}</td><td>{player(str(i), track)}</td></tr>")
    if stemset.source_error:
        rows.insert(0, f"<tr><td style='font-weight:bold;text-align:left'>source</td><td colspan='4' "
                       f"style='text-align:left'>not downloaded: {_html.escape(stemset.source_error)}</td></tr>")
    origin = _html.escape(f"{stemset.provider or 'files'}" + (f" · job {stemset.job_id}" if stemset.job_id else ""))
    return (f"<div><b>StemSet</b> · {len(stemset)} stems · {origin} · {stemset.sr} Hz"
            f"<table><thead><tr><th>stem</th><th>label</th><th>duration (s)</th><th>stated (s)</th>"
            f"<th>listen</th></tr></thead><tbody>{''.join(rows)}</tbody></table>{note}</div>")
