"""The recombination check: durations, lag, gain and residual, measured on sets with known faults."""

import numpy as np
import pytest
import soundfile as sf

from stemlab.analysis.check import check
from stemlab.dsp import estimate_lag
from stemlab.errors import UsageError
from stemlab.sandbox.synth import synth_stems
from stemlab.stemset import StemSet

SR = 44100


@pytest.fixture(scope="module")
def stems():
    return synth_stems(duration=3.0, sr=SR, names=("vocals", "drums", "bass", "guitar", "brass"),
                       silent=("brass",), seed=11)


def make_set(folder, stems, *, source=None, edit=None):
    folder.mkdir(exist_ok=True)
    paths = {}
    for name, audio in stems.items():
        audio = edit(name, audio) if edit else audio
        sf.write(folder / f"{name}.wav", audio.T, SR, subtype="FLOAT")
        paths[name] = folder / f"{name}.wav"
    mix = sum(stems.values()) if source is None else source
    sf.write(folder / "mixture.wav", mix.T, SR, subtype="FLOAT")
    return StemSet.open(folder)


def test_exact_stems_recombine(tmp_path, stems):
    report = check(make_set(tmp_path / "set", stems))
    assert report.ok and report.problems == ()
    assert report.lag_samples == 0 and report.gain == pytest.approx(1.0, abs=1e-4)
    assert report.residual_db < -100
    silent = {s.name: s.silent for s in report.stems}
    assert silent == {"vocals": False, "drums": False, "bass": False, "guitar": False, "brass": True}
    as_json = report.to_dict()
    assert set(as_json) >= {"ok", "source_duration", "lag_samples", "gain", "residual_db", "stems"}
    assert set(as_json["stems"][0]) >= {"name", "duration", "delta_s", "ok"}


def test_a_short_stem_is_named(tmp_path, stems):
    s = make_set(tmp_path / "set", stems, edit=lambda n, a: a[:, : a.shape[1] - SR // 5] if n == "bass" else a)
    report = check(s)
    assert not report.ok
    bad = [row.name for row in report.stems if not row.ok]
    assert bad == ["bass"] and "bass is 0.200 s shorter" in report.problems[0]


def test_lag_and_gain_are_measured(tmp_path, stems):
    delay = 1105  # an MP3 encoder delay that was not trimmed
    late = {n: np.pad(a, ((0, 0), (delay, 0)))[:, : a.shape[1]] for n, a in stems.items()}
    report = check(make_set(tmp_path / "late", late, source=sum(stems.values())))
    assert report.lag_samples == delay and not report.ok
    assert "the stems are 1,105 samples (25.1 ms) late against the source" in report.problems
    assert report.residual_db < -25  # once aligned, the stems still recombine (but for the lost tail)
    quiet = check(make_set(tmp_path / "quiet", stems, source=0.5 * sum(stems.values())))
    assert quiet.gain == pytest.approx(0.5, rel=1e-3) and not quiet.ok
    assert quiet.problems == ("the stems are 6.0 dB louder than the source",)  # not "-6.02 dB off"


def test_a_missing_part_shows_as_residual(tmp_path, stems):
    partial = {n: a for n, a in stems.items() if n != "drums"}
    report = check(make_set(tmp_path / "set", partial, source=sum(stems.values())))
    assert report.residual_db > -20 and not report.ok
    assert any(p.startswith("a part seems to be missing") for p in report.problems)


def test_no_source_is_a_usage_error(tmp_path, stems):
    folder = tmp_path / "nosrc"
    folder.mkdir()
    sf.write(folder / "vocals.wav", stems["vocals"].T, SR)
    with pytest.raises(UsageError, match="no source"):
        check(StemSet.open(folder))


def test_estimate_lag_finds_known_shifts():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 50000)).astype(np.float32)
    for lag in (-300, -1, 0, 7, 2257):
        shifted = np.roll(x, lag, axis=1)
        assert estimate_lag(x, shifted, max_lag=3000, excerpt=20000) == lag


def test_report_plot_and_html(tmp_path, stems):
    s = make_set(tmp_path / "set", stems, edit=lambda n, a: a[:, :-SR // 4] if n == "guitar" else a)
    report = check(s)
    html = report._repr_html_()
    assert "short" in html and "data:image/png;base64" in html and "guitar" in html
    row = html.split("<td style='text-align:left'>guitar</td>")[0].rsplit("<tr", 1)[1]
    assert "background:#fdecea" in row  # its row is highlighted
    from stemlab.view.figures import new_figure

    ax = new_figure().add_subplot()
    assert report.plot(ax=ax) is report and report.ax_ is ax and len(report.bars_) == len(s)
