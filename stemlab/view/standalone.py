"""Self-contained HTML pages that run a ``StemView`` with its audio (no kernel, no CDN).

A page embeds the widget's ES module, its CSS, one or more *scenes* (a scene is every synced
trait of a view, plus one audio file per track) and a small host shim that implements the part
of the anywidget model API the widget uses (``get``, ``set`` firing ``change:<name>``, ``on``,
``off``, a no-op ``save_changes``, and ``send`` answering ``need-audio`` from the embedded
audio). Every byte string (audio, waveforms, spectrogram images) is stored once, however many
scenes use it. The shim imports the module from a Blob URL, so the page works from ``file://``
as well as ``http://``.

``__stemlabPage.show(i)`` puts scene ``i`` on the player while it plays: the page keeps the
position (and each scene's mixer settings), so switching sets is an A/B at the same instant.
The page fires a ``stemlab:scene`` event on ``document`` with ``detail.index``.

>>> from stemlab.view.widget import StemView
>>> page = StemView(tracks=[{"name": "mix", "kind": "source"}], duration=1.0).to_html()
>>> "https://" in page, 'id="stemlab-data"' in page
(False, True)
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from dataclasses import dataclass, field
from typing import Any, Sequence

__all__ = ["Scene", "PlayerParts", "player_parts", "standalone_html"]

# Traits a scene switch leaves alone: the transport and the loop are the listener's, the identity
# the player's, and the view (waveform, spectrogram or both) what the listener chose.
TRANSPORT = ("_uid", "playing", "position", "status", "loop", "view")


@dataclass
class Scene:
    """One thing the player can show: a view's synced traits and one audio file per track."""

    label: str
    state: dict
    audio: list[bytes] = field(default_factory=list)  # MP3 or Ogg Opus: Web Audio sniffs the format


@dataclass(frozen=True)
class PlayerParts:
    """What a page needs to host the player: CSS, the element it draws in, and the scripts (put
    them at the end of ``<body>``)."""

    css: str
    root: str
    scripts: str
    blob_bytes: int  # the embedded bytes, before base64


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
const blobs = new Map(); // key -> Uint8Array, decoded from its <script> on first use
const blob = (key) => {
  if (!blobs.has(key)) {
    const tag = document.querySelector(`script[data-stemlab-blob="${key}"]`);
    blobs.set(key, fromBase64(tag ? tag.textContent.trim() : ""));
  }
  return blobs.get(key);
};
const dataView = (key) => { const b = blob(key); return new DataView(b.buffer, b.byteOffset, b.byteLength); };
const revive = (v) => Array.isArray(v) ? v.map(revive)
  : v && typeof v === "object" ? ("$blob" in v ? dataView(v.$blob)
    : Object.fromEntries(Object.entries(v).map(([k, x]) => [k, revive(x)])))
  : v;
const scenes = data.scenes.map((scene) => ({ ...scene, state: revive(scene.state) }));
const TRANSPORT = new Set(data.transport);
const MIXER = ["gains_db", "muted", "soloed", "ab"];
let current = 0;
let version = 1;
const state = { ...scenes[0].state };
const listeners = new Map();
const fire = (name, ...args) => [...(listeners.get(name) ?? [])].forEach((cb) => cb(...args));
// Audio goes as the kernel sends it: each file with its digest (its blob key), so the page keeps
// what it decoded; a scene switch first lists the digests and sends only what the page lacks.
const sendAudio = (indices) => setTimeout(() => {
  const keys = scenes[current].audio;
  if (!keys.length) fire("msg:custom", { type: "no-audio" }, []);
  (indices ?? keys.map((_, i) => i)).forEach((index) => fire("msg:custom",
    { type: "audio", index, count: keys.length, version, digest: keys[index] }, [dataView(keys[index])]));
});
const listAudio = () => setTimeout(() => {
  const keys = scenes[current].audio;
  fire("msg:custom", { type: "audio-list", version, count: keys.length, digests: keys }, []);
});
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
    if (msg.version === undefined || msg.version === version) sendAudio(msg.missing);
  },
};
// Scene i on the player, at the same position, playing on if it was; each scene keeps its mixer.
const show = (index) => {
  if (index === current || !scenes[index]) return;
  for (const name of MIXER) scenes[current].state[name] = state[name];
  current = index;
  version += 1;
  for (const [name, value] of Object.entries(scenes[index].state)) {
    if (!TRANSPORT.has(name)) model.set(name, value);
  }
  listAudio();
  document.dispatchEvent(new CustomEvent("stemlab:scene", { detail: { index } }));
};
const url = URL.createObjectURL(new Blob([data.esm], { type: "text/javascript" }));
const widget = (await import(url)).default;
await widget.initialize?.({ model });
await widget.render({ model, el: document.getElementById("stemlab-root") });
globalThis.__stemlabPage = { model, widget, show, scenes: scenes.map((s) => s.label), current: () => current };
"""


class _Blobs:
    """Byte strings stored once each, by content; JSON refers to them as ``{"$blob": key}``."""

    def __init__(self):
        self.data: dict[str, bytes] = {}

    def key(self, value: bytes) -> str:
        key = hashlib.sha256(value).hexdigest()[:20]
        self.data.setdefault(key, value)
        return key

    def jsonable(self, value: Any) -> Any:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return {"$blob": self.key(bytes(value))}
        if isinstance(value, (list, tuple)):
            return [self.jsonable(v) for v in value]
        if isinstance(value, dict):
            return {str(k): self.jsonable(v) for k, v in value.items()}
        return value

    def scripts(self) -> str:
        return "\n".join(f'<script type="application/octet-stream" data-stemlab-blob="{key}">'
                         f'{base64.b64encode(value).decode("ascii")}</script>' for key, value in self.data.items())


def _script_json(obj: Any) -> str:
    # "<" escaped as \u003c: nothing inside can close the <script> element early.
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def player_parts(scenes: Sequence[Scene], *, esm: str, css: str) -> PlayerParts:
    """The CSS, root element and scripts of a player that shows ``scenes`` (the first at load).

    >>> from stemlab.view.widget import StemView
    >>> v = StemView(tracks=[{"name": "mix", "kind": "source"}], duration=1.0)
    >>> state = {name: getattr(v, name) for name in StemView.class_own_traits(sync=True)}
    >>> parts = player_parts([Scene("a", state, [b"x"]), Scene("b", state, [b"x"])], esm="", css="")
    >>> parts.scripts.count('type="application/octet-stream"'), parts.blob_bytes  # b"x", b"" and the colormap
    (3, 769)
    """
    if not scenes:
        raise ValueError("a player needs at least one scene")
    blobs = _Blobs()
    payload = {"esm": esm, "transport": list(TRANSPORT),
               "scenes": [{"label": scene.label, "state": blobs.jsonable(scene.state),
                           "audio": [blobs.key(bytes(a)) for a in scene.audio]} for scene in scenes]}
    scripts = (f'<script type="application/json" id="stemlab-data">{_script_json(payload)}</script>\n'
               f'{blobs.scripts()}\n<script type="module">{_SHIM}</script>')
    return PlayerParts(css=f"<style>{css}</style>", root='<div id="stemlab-root"></div>', scripts=scripts,
                       blob_bytes=sum(map(len, blobs.data.values())))


def standalone_html(*, state: dict, esm: str, css: str, audio: list[bytes], title: str | None = None) -> str:
    """The HTML of a page that runs the widget module ``esm`` (with ``css``) on a model holding
    ``state``, and plays ``audio`` (one MP3 per track), with no kernel and no network.

    ``StemView.to_html`` calls it with the view's synced traits and MP3s. ``title`` is shown as
    the page heading and used as the document title.
    """
    parts = player_parts([Scene(title or "", state, list(audio))], esm=esm, css=css)
    heading = f"<h1>{html.escape(title)}</h1>\n" if title else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="stemlab">
<title>{html.escape(title or "stemlab")}</title>
<style>{_PAGE_CSS}</style>
{parts.css}
</head>
<body>
{heading}{parts.root}
{parts.scripts}
</body>
</html>
"""
