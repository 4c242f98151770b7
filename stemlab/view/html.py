"""The HTML pieces every view shares: an MP3 player element, and the pages' style.

>>> audio_player(b"ID3...", title="drums")[:24]
'<audio controls preload='
>>> audio_player(key="ab12", title="drums")
'<audio controls preload="none" title="drums" data-mp3="ab12"></audio>'
>>> audio_player(src="../cache/sets/a/stems/drums.mp3", title="drums")
'<audio controls preload="none" title="drums" src="../cache/sets/a/stems/drums.mp3"></audio>'
"""

from __future__ import annotations

import base64
import html

__all__ = ["audio_player", "PAGE_CSS"]

#: the style of stemlab's HTML pages (the demo's report, the study's report)
PAGE_CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 16px auto; max-width: 1280px;
       color: #1f2328; padding: 0 12px; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; }
h3 { font-size: 15px; margin: 18px 0 4px; }
.lead { margin: 0 0 10px; color: #444; }
.listen { display: grid; grid-template-columns: minmax(0, 1fr) 310px; gap: 12px; align-items: start; }
.sets { display: flex; flex-direction: column; gap: 4px; }
.sets button { text-align: left; font: inherit; padding: 5px 8px; border: 1px solid #d0d7de; border-radius: 6px;
               background: #f6f8fa; cursor: pointer; color: inherit; }
.sets button[aria-pressed="true"] { border-color: #0969da; background: #ddf4ff; }
.sets b { display: block; font-size: 13px; } .sets span { display: block; font-size: 12px; color: #57606a; }
.sets .bad { color: #b03a2e; font-weight: 600; }
.abbar { display: flex; flex-wrap: wrap; gap: 6px 12px; align-items: center; margin: 0 0 6px; font-size: 13px; }
.abbar button { font: inherit; padding: 3px 10px; border: 1px solid #0969da; border-radius: 6px; background: #fff;
                color: #0969da; cursor: pointer; }
.table { overflow-x: auto; } table { border-collapse: collapse; margin: 8px 0; }
td, th { padding: 2px 10px; text-align: right; } th { border-bottom: 1px solid #bbb; }
td:first-child, th:first-child { text-align: left; }
.bad { color: #b03a2e; font-weight: 600; } .good { color: #1e8449; } .muted { color: #888; }
.note { color: #555; font-size: 13px; } details { margin: 4px 0 10px; } summary { cursor: pointer; }
img { max-width: 100%; height: auto; }
@media (max-width: 900px) {
  .listen { grid-template-columns: minmax(0, 1fr); }
  body { padding: 0 6px; } td, th { padding: 2px 6px; }
}
@media (max-width: 520px) {  /* a phone: the player's mixer column narrows, the plots keep the rest */
  body .stemlab { min-width: 0; --sl-panel-w: 128px; }
  body .stemlab .sl-db, body .stemlab .sl-match { min-width: 30px; } body .stemlab .sl-time { min-width: 0; }
}
"""


def audio_player(data: bytes | None = None, *, title: str, key: str | None = None, src: str | None = None,
                 style: str = "") -> str:
    """An ``<audio>`` element for MP3 ``data`` (embedded as a data URI), for a file at the URL
    ``src`` (linked, as the study report does), or, with ``key``, one that a page script fills
    from a shared blob (``data-mp3="<key>"``, as the report does)."""
    style_attr = f' style="{html.escape(style, quote=True)}"' if style else ""
    if key is not None:
        source = f' data-mp3="{html.escape(key, quote=True)}"'
    elif src is not None:
        source = f' src="{html.escape(src, quote=True)}"'
    else:
        source = f' src="data:audio/mpeg;base64,{base64.b64encode(data or b"").decode("ascii")}"'
    return f'<audio controls preload="none" title="{html.escape(title, quote=True)}"{style_attr}{source}></audio>'
