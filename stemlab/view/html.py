"""The HTML pieces every view shares: an MP3 player element.

>>> audio_player(b"ID3...", title="drums")[:24]
'<audio controls preload='
>>> audio_player(key="ab12", title="drums")
'<audio controls preload="none" title="drums" data-mp3="ab12"></audio>'
"""

from __future__ import annotations

import base64
import html

__all__ = ["audio_player"]


def audio_player(data: bytes | None = None, *, title: str, key: str | None = None, style: str = "") -> str:
    """An ``<audio>`` element for MP3 ``data`` (embedded as a data URI) or, with ``key``, one that a
    page script fills from a shared blob (``data-mp3="<key>"``, as the report does)."""
    style_attr = f' style="{html.escape(style, quote=True)}"' if style else ""
    if key is not None:
        source = f' data-mp3="{html.escape(key, quote=True)}"'
    else:
        source = f' src="data:audio/mpeg;base64,{base64.b64encode(data or b"").decode("ascii")}"'
    return f'<audio controls preload="none" title="{html.escape(title, quote=True)}"{style_attr}{source}></audio>'
