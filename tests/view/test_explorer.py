"""The explorer's kernel side and the matplotlib plots, on the demo song."""

import base64
import re

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import stemlab  # noqa: E402
from stemlab.errors import UsageError  # noqa: E402
from stemlab.view.explorer import Explorer, explore  # noqa: E402
from stemlab.view.figures import new_figure  # noqa: E402


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    return stemlab.demo_song(cache_dir=str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def explorer(song):
    return Explorer(song)


def waves_of(view) -> np.ndarray:
    return np.frombuffer(view.waves, "<f4").reshape(len(view.tracks), view.wave_channels, 2, view.columns)


def test_rows_are_the_source_then_every_stem_with_silent_ones_marked(explorer, song):
    view = explorer.view
    assert [t["name"] for t in view.tracks] == ["source", *song.names]
    assert [t["silent"] for t in view.tracks if t["name"] in ("synth", "fx", "woodwinds")] == [True] * 3
    assert view.specs[song.names.index("fx") + 1] == b"" and view.specs[1][:4] == b"\x89PNG"
    assert len(view.energy) == len(view.tracks) and view.duration == pytest.approx(song.duration)
    assert len(view.audio) == len(view.tracks) and view.audio[1] == song["vocals"].path.read_bytes()


def test_zoom_recomputes_rows_at_the_new_resolution(explorer, song):
    full = waves_of(explorer.view).copy()
    explorer.zoom(20.0, 21.0)
    assert (explorer.view.t0, explorer.view.t1) == (20.0, 21.0)
    zoomed = waves_of(explorer.view)
    drums = 1 + song.names.index("drums")
    seconds = np.asarray(song["drums"].audio[:, 20 * song.sr: 21 * song.sr]).mean(axis=0)
    assert zoomed[drums, 0, 1].max() == pytest.approx(seconds.max(), abs=1e-6)
    assert not np.array_equal(full, waves_of(explorer.view))
    explorer.zoom(21.0, 21.005)  # 220 samples for 1000 columns: the samples themselves
    assert explorer.view.waves == b"" and len(explorer.view.wave_points) > 0
    with pytest.raises(UsageError, match="zoom needs"):
        explorer.zoom(5.0, 5.0)


def test_controls_change_view_scale_channels_and_tracks(explorer):
    log_ticks = explorer.view.freq_ticks
    explorer.scale_select.value = "linear"
    assert explorer.view.freq_ticks != log_ticks
    explorer.channel_select.value = "stereo"
    assert explorer.view.wave_channels == 2 and waves_of(explorer.view).shape[1] == 2
    explorer.view_select.value = "waveform"
    assert explorer.view.view == "waveform"
    explorer.track_select.value = True
    assert [t["name"] for t in explorer.view.tracks] == ["source", "stem sum", "residual"]
    assert len(explorer.view.audio) == 3 and len(explorer.view.gains_db) == 3
    residual = waves_of(explorer.view)[2]
    assert np.abs(residual).max() < 0.01  # the true stems sum to the source


def test_snapshot_embed_and_html_export(explorer, tmp_path):
    png = explorer.snapshot()
    assert png[:4] == b"\x89PNG"
    path = explorer.save_html(tmp_path / "stems.html")
    page = path.read_text()
    assert "<script src=" not in page and not re.search(r"https?://(?!www\.w3\.org)", page)
    first_mp3 = base64.b64encode(explorer.view.audio[1][:300]).decode()[:200]
    assert first_mp3 in page
    embedded = explore(explorer.stemset, embed=True)._repr_html_()
    assert embedded.startswith("<iframe srcdoc=") and "allow-scripts" in embedded


def test_plot_functions_take_ax_and_return_artists(song):
    fig = new_figure()
    ax = fig.add_subplot()
    artists = stemlab.plot_waveform(song["bass"], ax=ax, t0=10, t1=12, channels="stereo")
    assert len(artists) == 2 and ax.get_xlim() == (10.0, 12.0)
    image = stemlab.plot_spectrogram(song["bass"], ax=fig.add_subplot(2, 1, 2), scale="mel", vmax_db=0.0)
    assert image.get_extent() == [0.0, pytest.approx(song.duration), 0.0, 1.0] and image.db_range_ == (-80.0, 0.0)
    points = stemlab.plot_waveform(np.zeros(100), sr=1000, ax=new_figure().add_subplot())
    assert len(points) == 1 and len(points[0].get_xdata()) == 100
    with pytest.raises(UsageError, match="sr="):
        stemlab.plot_waveform(np.zeros(100))
    figure = stemlab.plot_stems(song, view="both", t0=0, t1=10)
    assert len(figure.axes) == 2 * (len(song) + 1)
    import matplotlib.pyplot as plt

    plt.close("all")


# ---- what the user set survives; the page's controls drive the rows; busy states ------------------

def _mixer(view):
    return {t["name"]: (g, m, s) for t, g, m, s in zip(view.tracks, view.gains_db, view.muted, view.soloed)}


def test_mixer_survives_the_residual_round_trip_and_every_other_change(explorer, monkeypatch):
    import stemlab.view.scene as scene

    view = explorer.view
    names = [t["name"] for t in view.tracks]
    gains = [-6.0 if n == "bass" else -2.0 if n == "source" else 0.0 for n in names]
    view.gains_db, view.muted = gains, [n == "drums" for n in names]
    view.soloed, view.ab, view.loop = [n == "vocals" for n in names], "source", [20.0, 24.0]
    before = _mixer(view)

    view.show = "residual"  # as the page's "residual" button does
    assert [t["name"] for t in view.tracks] == ["source", "stem sum", "residual"]
    assert _mixer(view)["source"] == before["source"]  # the source row keeps its settings across layouts
    view.gains_db = [view.gains_db[0], -3.0, -9.0]
    for change in (("scale", "mel"), ("view", "waveform"), ("channels", "stereo"), ("view", "both")):
        setattr(view, *change)
    explorer.zoom(10.0, 12.0)
    version = view._audio_version
    calls = []
    real = scene.compute_rows  # what every explorer row comes from
    monkeypatch.setattr(scene, "compute_rows", lambda *a, **k: calls.append(a) or real(*a, **k))
    view.show = "stems"
    assert _mixer(view) == {**before, "source": (-2.0, False, False)}
    assert (view.ab, view.loop, view.t0, view.t1, view.scale) == ("source", [20.0, 24.0], 10.0, 12.0, "mel")
    view.show = "residual"
    assert [g for g in view.gains_db[1:]] == [-3.0, -9.0] and view._audio_version == version
    view.show = "stems"
    assert len(calls) == 1  # the second round trip came from the caches


def test_the_way_back_from_the_residual_is_fast(explorer):
    import time

    explorer.view.show = "residual"
    explorer.view.show = "stems"
    started = time.perf_counter()
    explorer.view.show = "residual"
    explorer.view.show = "stems"
    assert time.perf_counter() - started < 0.5  # 0.2 s per way, uncached (4.2 s in the page before)


def test_page_controls_drive_the_rows_without_loops(explorer, monkeypatch):
    import stemlab.view.scene as scene

    view = explorer.view
    assert view.controls == ["view", "scale", "channels", "show", "zoom", "loop"]
    calls = []
    real = scene.compute_rows  # what every explorer row comes from
    monkeypatch.setattr(scene, "compute_rows", lambda *a, **k: calls.append((a[1], a[2])) or real(*a, **k))
    with view.hold_trait_notifications():  # a page's zoom: t0 and t1 in one message
        view.t0, view.t1 = 5.0, 7.5
    assert calls == [(5.0, 7.5)] and view.shown["t0"] == 5.0 and view.shown["t1"] == 7.5
    assert waves_of(view).shape[-1] == view.columns
    assert explorer.range_select.value == (5.0, 7.5)  # the old slider's name follows
    view.scale = "linear"
    assert view.shown["scale"] == "linear" and len(calls) == 2
    view.t1 = 5.0  # an empty window from a page: the narrowest one
    assert view.t1 > view.t0 and view.shown["t1"] == view.t1
    explorer.zoom(0, view.duration)
    explorer.refresh(force=False)  # nothing changed: nothing computed
    assert len(calls) == 4


def test_busy_is_said_before_the_work_and_cleared_with_the_new_rows(explorer):
    view = explorer.view
    seen = []
    view.observe(lambda change: seen.append((change["name"], change["new"] if change["name"] == "busy" else None)),
                 names=["busy", "tracks", "shown"])
    view.show = "residual"
    assert seen[0] == ("busy", "computing the residual") and seen[-1] == ("busy", "")
    assert [name for name, _ in seen[1:-1]] == ["tracks", "shown"]


def test_compare_view_says_busy_and_updates_numbers_first(small_comparison):
    """Changing set A: the numbers at once, then busy (sent before the work), then the rows with
    their captions, and busy cleared in the same update."""
    compare = small_comparison.view(stem="vocals")
    view, seen = compare.view, []
    view.observe(lambda change: seen.append((change["name"], change["new"])), names=["busy", "ab_labels", "tracks"])
    compare.table.observe(lambda change: seen.append(("table", None)), names="value")
    other = next(label for label in small_comparison.audio if label not in ("a", "b"))
    compare.a_select.value = other
    assert [name for name, _ in seen] == ["table", "busy", "tracks", "ab_labels", "busy"]
    assert seen[1][1] == f"loading vocals: A {other}, B b" and seen[-1] == ("busy", "")
    assert view.ab_labels == ["B: b", f"A: {other}"] and f"A: {other}" in [t["name"] for t in view.tracks]


def test_compare_view_back_to_a_set_computes_nothing(small_comparison, monkeypatch):
    import stemlab.encode as encode

    compare = small_comparison.view(stem="vocals")
    other = next(label for label in small_comparison.audio if label not in ("a", "b"))
    compare.a_select.value = other
    version = compare.view._audio_version
    compare.a_select.value = "a"
    encoded = []
    monkeypatch.setattr(encode, "encode_arrays", lambda jobs, *a, **k: encoded.append(len(jobs)) or [b""] * len(jobs))
    compare.a_select.value = other  # its tracks (display data, MP3s) are cached: the same audio version
    assert compare.view._audio_version == version and sum(encoded) == 0


def test_a_set_without_a_source_offers_no_residual(song, tmp_path):
    """There is nothing to recombine to: the button would leave the plots stuck as stale."""
    import shutil

    folder = tmp_path / "stems-only"
    folder.mkdir()
    for stem in song:
        shutil.copy(stem.path, folder / stem.path.name)
    stems_only = stemlab.open_set(folder, cache_dir=tmp_path / "cache")
    assert stems_only.source is None
    assert "show" not in Explorer(stems_only).view.controls and "show" in Explorer(song).view.controls
    with pytest.raises(UsageError, match="needs a set with a source"):
        Explorer(stems_only, residual=True)
