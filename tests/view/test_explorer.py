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
