"""StemView, Python side: traits, validation, the audio message protocol, saved-state size, export."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from ipywidgets.widgets.widget import _remove_buffers
from traitlets import TraitError

from stemlab.view.spectrogram import colormap_lut, gray_png
from stemlab.view.widget import StemView, energy_matrix, pack_waves

DEMO = Path(__file__).resolve().parents[2] / "stemlab" / "demo" / "data"
FAKE_MP3S = [b"ID3\x04fake-mp3-source" + bytes(range(200)), b"ID3\x04fake-mp3-drums" + bytes(300),
             b"ID3\x04fake-mp3-bass" + b"\xff" * 100]


def three_tracks(**kwargs) -> StemView:
    tracks = [{"name": "source", "kind": "source"}, {"name": "drums", "label": "Drums"}, {"name": "bass"}]
    return StemView(tracks=tracks, duration=6.0, **kwargs)


def custom_message(widget: StemView, content: dict, buffers=()) -> None:
    """Deliver a custom comm message as ipywidgets does when the page calls ``model.send``."""
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": list(buffers)})


@pytest.fixture
def sent(monkeypatch):
    """Patch a widget's ``send`` and collect (content, buffers) of every message it sends."""
    def patch(widget):
        messages = []
        monkeypatch.setattr(widget, "send", lambda content, buffers=None: messages.append((content, buffers)))
        return messages
    return patch


# ---- traits ----------------------------------------------------------------------------------

def test_defaults():
    view = StemView()
    assert view.tracks == [] and view.duration == 0.0
    assert view.view == "both" and view.ab == "stems"
    assert (view.t0, view.t1, view.columns, view.wave_channels) == (0.0, 0.0, 1000, 1)
    assert view.waves == b"" and view.wave_points == b"" and view.specs == []
    assert view.gains_db == [] and view.muted == [] and view.soloed == [] and view.energy == []
    assert (view.playing, view.position, view.status) == (False, 0.0, "")
    assert len(view.colormap) == 768 and view.colormap == colormap_lut("magma")
    assert re.fullmatch(r"[0-9a-f]{32}", view._uid) and view._uid != StemView()._uid
    assert view.audio == []


def test_tracks_are_normalised_and_the_mixer_follows_them():
    view = three_tracks()
    assert [t["kind"] for t in view.tracks] == ["source", "stem", "stem"]
    assert [t["label"] for t in view.tracks] == ["source", "Drums", "bass"]
    assert [t["silent"] for t in view.tracks] == [False, False, False]
    assert view.gains_db == [0.0] * 3 and view.muted == [False] * 3 and view.soloed == [False] * 3
    assert view.t1 == 6.0  # the window defaults to the whole duration

    view.gains_db = [0.0, -6.0, 3.0]
    view.muted = [False, True, False]
    view.tracks = view.tracks + [{"name": "residual", "kind": "residual", "silent": True}]
    assert view.gains_db == [0.0, -6.0, 3.0, 0.0]
    assert view.muted == [False, True, False, False] and view.soloed == [False] * 4
    view.tracks = view.tracks[:2]
    assert view.gains_db == [0.0, -6.0] and view.muted == [False, True]


@pytest.mark.parametrize("tracks, message", [
    ([{"kind": "stem"}], "name"),
    ([{"name": ""}], "name"),
    ([{"name": "x", "kind": "drum"}], "kind"),
    ([{"name": "a", "kind": "source"}, {"name": "b", "kind": "source"}], "at most one"),
])
def test_bad_tracks_are_rejected(tracks, message):
    with pytest.raises(TraitError, match=message):
        StemView(tracks=tracks)


@pytest.mark.parametrize("name, value", [
    ("view", "spectrum"), ("ab", "mix"), ("wave_channels", 3), ("columns", 0), ("duration", -1.0),
    ("t0", float("nan")), ("colormap", b"\x00" * 10), ("energy", [[1.0, 0.0]]), ("gains_db", [float("nan")]),
])
def test_bad_values_are_rejected(name, value):
    view = three_tracks()
    with pytest.raises(TraitError):
        setattr(view, name, value)


def test_good_values_are_accepted_and_gains_are_clipped_to_the_fader():
    view = three_tracks()
    for mode in ("waveform", "spectrogram", "both"):
        view.view = mode
    view.ab = "source"
    view.wave_channels = 2
    view.gains_db = [-200.0, 0.0, 40.0]
    assert view.gains_db == [-60.0, 0.0, 12.0]


def test_byte_format_helpers():
    envelopes = np.zeros((3, 2, 2, 10))
    envelopes[1, 0, 1, :] = 2.0  # clipped to 1
    data = np.frombuffer(pack_waves(envelopes), "<f4").reshape(3, 2, 2, 10)
    assert data[1, 0, 1, 0] == 1.0 and data.sum() == 10
    with pytest.raises(ValueError):
        pack_waves(np.zeros((3, 2, 10)))

    from PIL import Image
    import io

    image = np.arange(256, dtype=np.uint8).reshape(16, 16)
    decoded = Image.open(io.BytesIO(gray_png(image)))
    assert decoded.mode == "L" and np.array_equal(np.asarray(decoded), image)
    assert np.asarray(Image.open(io.BytesIO(gray_png(np.ones((2, 3)))))).max() == 255


def test_energy_matrix_gives_the_power_of_any_weighted_mix():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 2, 50_000)).astype(np.float32)
    mono = rng.standard_normal(50_000).astype(np.float32)
    energy = np.array(energy_matrix([a + b, a, b, mono]))
    assert energy.shape == (4, 4) and np.allclose(energy, energy.T)
    g = np.array([0.0, 0.5, 2.0, 1.0])
    mix = 0.5 * a + 2.0 * b + mono[None]  # a mono track counts on both channels
    assert g @ energy @ g == pytest.approx(np.sum(mix.astype(np.float64) ** 2) / 50_000, rel=1e-9)


# ---- audio message protocol ----------------------------------------------------------------

def test_need_audio_is_answered_with_one_message_per_track(sent):
    view = three_tracks()
    view.set_audio(FAKE_MP3S)
    messages = sent(view)
    assert messages == []  # nothing is pushed before a page asks
    custom_message(view, {"type": "need-audio"})
    digests = [m.pop("digest") for m, _ in messages]
    assert [m for m, _ in messages] == [{"type": "audio", "index": i, "count": 3, "version": 1} for i in range(3)]
    assert [b for _, b in messages] == [[mp3] for mp3 in FAKE_MP3S]
    assert len(set(digests)) == 3 and all(re.fullmatch(r"[0-9a-f]{16}", d) for d in digests)

    # A second page asks: same set, same version (pages that have it ignore the repeat).
    custom_message(view, {"type": "need-audio"})
    assert len(messages) == 6 and messages[3][0]["version"] == 1
    # New audio: the pages get its list of digests, and ask for what they have not decoded.
    view.set_audio(FAKE_MP3S[::-1])
    assert messages[6] == ({"type": "audio-list", "version": 2, "count": 3, "digests": digests[::-1]}, None)
    custom_message(view, {"type": "need-audio", "version": 2, "missing": [0]})
    assert messages[7] == ({"type": "audio", "index": 0, "count": 3, "version": 2, "digest": digests[2]},
                           [FAKE_MP3S[2]])
    custom_message(view, {"type": "need-audio", "version": 1, "missing": [0]})  # an old version: ignored
    assert len(messages) == 8


def test_the_same_audio_keeps_its_version_so_pages_decode_nothing(sent):
    """The way back to a track list a page has seen: the same version and digests, no MP3 sent."""
    view = three_tracks()
    messages = sent(view)
    custom_message(view, {"type": "need-audio"})
    view.set_audio(FAKE_MP3S)
    view.set_audio(FAKE_MP3S[:2] + [b"ID3 other"])
    view.set_audio(FAKE_MP3S)
    lists = [m for m, b in messages if m["type"] == "audio-list"]
    assert [m["version"] for m in lists] == [1, 2, 1] and lists[0] == lists[2]
    assert lists[0]["digests"][:2] == lists[1]["digests"][:2] != lists[1]["digests"]
    assert all(b is None for _, b in messages[1:])


def test_need_audio_before_set_audio(sent, tmp_path):
    view = three_tracks()
    messages = sent(view)
    custom_message(view, {"type": "need-audio"})
    assert messages == [({"type": "no-audio"}, None)]
    paths = []
    for i, mp3 in enumerate(FAKE_MP3S):
        paths.append(tmp_path / f"{i}.mp3")
        paths[-1].write_bytes(mp3)
    view.set_audio(paths)  # paths work too; the page asked already, so it gets the list now
    assert messages[1][0]["type"] == "audio-list" and messages[1][0]["count"] == 3
    custom_message(view, {"type": "need-audio", "version": 1, "missing": [0, 1, 2]})
    assert [b for _, b in messages[2:]] == [[mp3] for mp3 in FAKE_MP3S]


def test_other_messages_are_ignored_and_set_audio_checks_the_count(sent):
    view = three_tracks()
    messages = sent(view)
    custom_message(view, {"type": "something-else"})
    custom_message(view, "not a dict")
    assert messages == []
    with pytest.raises(ValueError, match="3 tracks"):
        view.set_audio(FAKE_MP3S[:2])


def test_seek_play_pause(sent):
    view = three_tracks()
    messages = sent(view)
    view.seek(2.5)
    view.seek(99)
    view.seek(-1)
    assert [m for m, _ in messages] == [{"type": "seek", "t": 2.5}, {"type": "seek", "t": 6.0},
                                        {"type": "seek", "t": 0.0}]
    with pytest.raises(ValueError):
        view.seek(float("inf"))
    view.play()
    assert view.playing
    view.pause()
    assert not view.playing


# ---- saved state ---------------------------------------------------------------------------

def _spectrogram_image(audio: np.ndarray, columns: int, rows: int = 160, sr: int = 44100) -> np.ndarray:
    """Log-frequency magnitude in dB, -80..0 dBFS mapped to 0..1, row 0 = highest frequency."""
    x = audio.mean(0)
    n_fft = 2048
    starts = np.linspace(0, len(x) - n_fft, columns).astype(int)
    frames = np.stack([x[s:s + n_fft] for s in starts]) * np.hanning(n_fft)
    magnitude = np.abs(np.fft.rfft(frames, axis=1)) / (n_fft / 4)
    centers = np.geomspace(30, 16000, rows)
    image = np.stack([np.interp(centers, np.fft.rfftfreq(n_fft, 1 / sr), m) for m in magnitude], axis=1)
    return np.clip(1 + 20 * np.log10(np.maximum(image, 1e-9)) / 80, 0, 1)[::-1]


def _envelope(audio: np.ndarray, columns: int) -> np.ndarray:
    n = audio.shape[1] // columns * columns
    frames = audio[:, :n].reshape(audio.shape[0], columns, -1)
    return np.stack([frames.min(-1), frames.max(-1)], axis=1)


def test_saved_state_is_small_and_holds_no_audio():
    """13 tracks (real music: the demo stems, their sum, mixes and noise), stereo envelopes and
    13 PNGs of 160 x 1000: the state a notebook would save stays under 2 MB, without MP3s."""
    stems = [sf.read(path, dtype="float32", always_2d=True)[0].T for path in sorted(DEMO.glob("*.mp3"))]
    n = min(s.shape[1] for s in stems)
    stems = [s[:, :n] for s in stems]
    noise = 0.1 * np.random.default_rng(1).standard_normal(stems[0].shape).astype(np.float32)
    audio = [sum(stems), *stems, stems[0] + stems[1], 0.5 * stems[2], noise][:13]
    assert len(audio) == 13
    mp3s = [path.read_bytes() for path in sorted(DEMO.glob("*.mp3"))]
    mp3s = (mp3s * 2)[:13]

    view = StemView(
        tracks=[{"name": "source", "kind": "source"}] + [{"name": f"stem{i}"} for i in range(12)],
        duration=n / 44100, wave_channels=2,
        waves=pack_waves(np.stack([_envelope(a, 1000) for a in audio])),
        specs=[gray_png(_spectrogram_image(a, 1000)) for a in audio],
        freq_ticks=[(0.2, "100 Hz"), (0.55, "1 kHz"), (0.9, "10 kHz")],
        energy=energy_matrix(audio),
    )
    view.set_audio(mp3s)
    state, buffer_paths, buffers = _remove_buffers(view.get_state())
    size = len(json.dumps(state)) + sum(len(b) for b in buffers)
    assert size < 2_000_000, size
    assert sum(len(m) for m in mp3s) > 2 * size  # the audio alone would not fit
    assert ["specs", 12] in buffer_paths and ["waves"] in buffer_paths
    for mp3 in mp3s:
        assert not any(bytes(mp3[1000:1064]) in bytes(b) for b in buffers)
    assert not any(isinstance(v, (bytes, memoryview)) for v in state.values())


# ---- standalone export ---------------------------------------------------------------------

def test_to_html_is_self_contained(tmp_path):
    view = three_tracks(waves=pack_waves(np.zeros((3, 1, 2, 1000))), specs=[gray_png(np.zeros((8, 8))), b"", b""],
                        db_label="-80 .. 0 dBFS </script><b>")
    view.set_audio(FAKE_MP3S)
    view.muted = [False, True, False]
    view.playing = True
    path = tmp_path / "view.html"
    html = view.to_html(path, title="Song <1>")
    assert path.read_text(encoding="utf-8") == html
    assert html.startswith("<!doctype html>") and "<title>Song &lt;1&gt;</title>" in html

    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    assert not re.search(r"<script[^>]*\bsrc=", html) and not re.search(r"<link[^>]*\bhref=", html)
    for mp3 in FAKE_MP3S:
        assert base64.b64encode(mp3).decode() in html

    data = re.search(r'<script type="application/json" id="stemlab-data">(.*?)</script>', html, re.S).group(1)
    assert "</" not in data  # nothing inside can close the script element
    payload = json.loads(data)
    blobs = {key: base64.b64decode(text) for key, text in
             re.findall(r'<script type="application/octet-stream" data-stemlab-blob="(\w+)">(.*?)</script>', html)}
    assert payload["esm"] == Path(__file__).resolve().parents[2].joinpath("stemlab/view/stemview.js").read_text()
    [scene] = payload["scenes"]
    state = scene["state"]
    assert state["muted"] == [False, True, False] and state["playing"] is False
    assert state["db_label"] == "-80 .. 0 dBFS </script><b>"
    assert blobs[state["waves"]["$blob"]] == view.waves
    assert blobs[state["specs"][1]["$blob"]] == b""
    assert [blobs[key] for key in scene["audio"]] == FAKE_MP3S
    assert set(state) >= {"_uid", "tracks", "duration", "view", "t0", "t1", "colormap", "energy", "gains_db"}
    assert "export default" in payload["esm"] and ".stemlab" in html  # the module and its CSS


def test_a_page_stores_each_byte_string_once():
    """Scenes that share audio or pictures (every set has the same source) embed them once."""
    from stemlab.view.standalone import Scene, player_parts

    view = three_tracks(waves=pack_waves(np.zeros((3, 1, 2, 1000))))
    state = {name: getattr(view, name) for name in StemView.class_own_traits(sync=True)}
    one = player_parts([Scene("a", state, FAKE_MP3S)], esm="", css="")
    two = player_parts([Scene("a", state, FAKE_MP3S), Scene("b", state, FAKE_MP3S[::-1])], esm="", css="")
    assert two.blob_bytes == one.blob_bytes
    assert len(two.scripts) < len(one.scripts) + 2000


def test_to_html_without_audio_still_renders_the_plots():
    html = three_tracks(waves=pack_waves(np.zeros((3, 1, 2, 1000)))).to_html()
    payload = json.loads(re.search(r'id="stemlab-data">(.*?)</script>', html, re.S).group(1))
    assert payload["scenes"][0]["audio"] == [] and "$blob" in payload["scenes"][0]["state"]["waves"]


# ---- the mixer follows the rows by name; controls, loop and what the data shows -------------------

def test_mixer_settings_follow_names_and_come_back():
    """The explorer's stems -> residual -> stems: every stem gets its settings back, the source keeps its own."""
    view = three_tracks()
    view.gains_db, view.muted, view.soloed = [-3.0, -6.0, 2.0], [False, True, False], [False, False, True]
    residual = [{"name": "source", "kind": "source"}, {"name": "stem sum", "kind": "sum"},
                {"name": "residual", "kind": "residual"}]
    stems = view.tracks
    view.tracks = residual
    assert view.gains_db == [-3.0, 0.0, 0.0] and view.muted == [False] * 3 and view.soloed == [False] * 3
    view.gains_db = [-4.0, 0.0, -12.0]
    view.tracks = stems
    assert view.gains_db == [-4.0, -6.0, 2.0] and view.muted == [False, True, False]
    assert view.soloed == [False, False, True]
    view.tracks = residual
    assert view.gains_db == [-4.0, 0.0, -12.0]
    view.tracks = [stems[2], stems[0]]  # reordered: by name, not by place
    assert view.gains_db == [2.0, -4.0] and view.soloed == [True, False]


def test_controls_loop_and_shown_traits():
    view = three_tracks()
    assert view.controls == ["zoom", "loop"] and view.loop == [] and view.shown == {} and view.busy == ""
    assert (view.scale, view.channels, view.show) == ("log", "mid", "stems")
    view.loop = [1.0, 2.5]
    assert view.loop == [1.0, 2.5]
    view.loop = [5.0, 99.0]  # clipped to the duration
    assert view.loop == [5.0, 6.0]
    view.loop = []
    for name, value in [("scale", "bark"), ("channels", "left"), ("show", "sum"), ("controls", ["volume"]),
                        ("loop", [2.0, 1.0]), ("loop", [1.0]), ("loop", [7.0, 8.0]), ("loop", [0.0, float("inf")])]:
        with pytest.raises(TraitError):
            setattr(view, name, value)


def test_to_html_keeps_only_the_controls_a_page_without_kernel_can_serve():
    view = three_tracks(controls=["view", "scale", "channels", "show", "zoom", "loop"], t0=1.0, t1=3.0,
                        shown={"t0": 1.0, "t1": 2.0, "view": "both"}, busy="computing", loop=[1.5, 1.75])
    page = view.page_state()  # what to_html embeds (for pages that build their own)
    assert page["controls"] == ["zoom", "loop"] and page["shown"] == {} and page["playing"] is False
    data = re.search(r'<script type="application/json" id="stemlab-data">(.*?)</script>', view.to_html(), re.S)
    payload = json.loads(data.group(1))
    state = payload["scenes"][0]["state"] if "scenes" in payload else payload["state"]
    assert state["controls"] == ["zoom", "loop"] and state["shown"] == {} and state["busy"] == ""
    assert (state["t0"], state["t1"]) == (1.0, 2.0)  # the window the data is for
    assert state["loop"] == [1.5, 1.75]
