"""A single self-contained HTML file with a ``StemView`` and its audio (no kernel, no CDN).

The page embeds the widget's ES module, its CSS, its state (every synced trait, bytes as base64)
and the MP3s (base64), plus a small host shim that implements the part of the anywidget model
API the widget uses (``get``, ``set`` firing ``change:<name>``, ``on``, ``off``, a no-op
``save_changes``, and ``send`` answering ``need-audio`` from the embedded MP3s). The shim
imports the module from a Blob URL, so the page works from ``file://`` as well as ``http://``.

>>> from stemlab.view.widget import StemView
>>> page = StemView(tracks=[{"name": "mix", "kind": "source"}], duration=1.0).to_html()
>>> "https://" in page, 'id="stemlab-data"' in page
(False, True)
"""

from __future__ import annotations

import base64
import html
import json
from typing import Any

__all__ = ["standalone_html"]

_PAGE_CSS = """
:root { color-scheme: light dark; }
body { margin: 16px; background: #ffffff; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
h1 { font-size: 16px; font-weight: 600; margin: 0 0 10px; color: #1f2328; }
@media (prefers-color-scheme: dark) {
  :root {
    --jp-layout-color1: #1f1f1f; --jp-layout-color2: #2a2a2a; --jp-ui-font-color1: #e8e8e8;
    --jp-ui-font-color2: #a9a9a9; --jp-border-color1: #5a5a5a; --jp-border-color2: #3a3a3a;
    --jp-brand-color1: #4a9bf0;
  }
  body { background: #161616; }
  h1 { color: #e8e8e8; }
}
"""

# The anywidget host, reduced to what stemview.js uses. Runs as an inline module script.
_SHIM = r"""
const data = JSON.parse(document.getElementById("stemlab-data").textContent);
const fromBase64 = (text) => {
  if (Uint8Array.fromBase64) return Uint8Array.fromBase64(text);
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
};
const dataView = (text) => new DataView(fromBase64(text).buffer);
const revive = (v) => Array.isArray(v) ? v.map(revive)
  : v && typeof v === "object" ? ("$bytes" in v ? dataView(v.$bytes)
    : Object.fromEntries(Object.entries(v).map(([k, x]) => [k, revive(x)])))
  : v;
const state = revive(data.state);
const listeners = new Map();
const fire = (name, ...args) => [...(listeners.get(name) ?? [])].forEach((cb) => cb(...args));
const model = {
  get: (name) => state[name],
  set(name, value) {
    if (state[name] === value) return;
    state[name] = value;
    fire(`change:${name}`, model, value);
  },
  on(name, cb) {
    if (!listeners.has(name)) listeners.set(name, []);
    listeners.get(name).push(cb);
  },
  off(name, cb) {
    if (!name) listeners.clear();
    else if (!cb) listeners.delete(name);
    else listeners.set(name, (listeners.get(name) ?? []).filter((x) => x !== cb));
  },
  save_changes() {},
  send(msg) {
    if (msg?.type !== "need-audio") return;
    setTimeout(() => {
      const tags = [...document.querySelectorAll("script[data-stemlab-audio]")];
      if (!tags.length) fire("msg:custom", { type: "no-audio" }, []);
      tags.forEach((tag, index) => fire("msg:custom",
        { type: "audio", index, count: tags.length, version: 1 }, [dataView(tag.textContent.trim())]));
    });
  },
};
const url = URL.createObjectURL(new Blob([data.esm], { type: "text/javascript" }));
const widget = (await import(url)).default;
await widget.initialize?.({ model });
await widget.render({ model, el: document.getElementById("stemlab-root") });
globalThis.__stemlabPage = { model, widget }; // for tests and the console: model.set("muted", [...])
"""


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _script_json(obj: Any) -> str:
    # "<" escaped as \u003c: nothing inside can close the <script> element early.
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def standalone_html(*, state: dict, esm: str, css: str, audio: list[bytes], title: str | None = None) -> str:
    """The HTML of a page that runs the widget module ``esm`` (with ``css``) on a model holding
    ``state``, and plays ``audio`` (one MP3 per track), with no kernel and no network.

    ``StemView.to_html`` calls it with the view's synced traits and MP3s. ``title`` is shown as
    the page heading and used as the document title.
    """
    payload = {"state": _jsonable(state), "esm": esm}
    audio_tags = "\n".join(
        f'<script type="application/octet-stream" data-stemlab-audio="{i}">'
        f'{base64.b64encode(mp3).decode("ascii")}</script>'
        for i, mp3 in enumerate(audio)
    )
    heading = f"<h1>{html.escape(title)}</h1>\n" if title else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="stemlab">
<title>{html.escape(title or "stemlab")}</title>
<style>{_PAGE_CSS}</style>
<style>{css}</style>
</head>
<body>
{heading}<div id="stemlab-root"></div>
<script type="application/json" id="stemlab-data">{_script_json(payload)}</script>
{audio_tags}
<script type="module">{_SHIM}</script>
</body>
</html>
"""
