"""Real stems, not the project's own: MUSDB18's "80s Rock" (read in place from ../shared/data) and
the variants a user's material arrives as. check names the culprit, and compare and separate run
on every variant."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import stemlab
from realdata import LENGTH, ROCK, SR, STEMS, VARIANTS, make_variant, rock
from stemlab.audio import decode, probe
from stemlab.encode import mp3_bytes
from stemlab.sandbox.synth import strip_xing_frame



@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    root = tmp_path_factory.mktemp("variants")
    return {name: make_variant(name, root) for name in VARIANTS}


def test_the_sample_as_it_is_recombines():
    report = stemlab.check(ROCK)
    assert report.ok and report.lag_samples == 0
    assert report.residual_db == pytest.approx(-31.6, abs=0.1)  # the dataset's AAC-coded streams (its README)
    assert report.gain_db == pytest.approx(-0.01, abs=0.01)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_check_gives_the_verdict_and_names_the_culprit(variants, name):
    ok, culprits, words = VARIANTS[name]
    report = stemlab.check(variants[name])
    assert report.ok is ok, report.problems
    assert report.culprits == culprits
    if words is not None:
        assert any(words in problem for problem in report.problems), report.problems
    if ok:
        assert report.residual_db < -25 and report.problems == ()


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_compare_and_separate_run_on_every_variant(variants, name):
    comparison = stemlab.compare(variants[name], reference=ROCK, bss=False)
    scores = comparison.scores().set_index("stem")
    present = [stem for stem in STEMS if stem != "bass" or name != "missing"]
    assert list(scores.index) == present  # without bass, "other" stands for bass and other together
    oracle = stemlab.separate(stemlab.StemSet.open(variants[name]), method="oracle")
    assert set(oracle.names) == set(present) and oracle.sr == stemlab.StemSet.open(variants[name]).sr
    if VARIANTS[name][0] and name not in ("mono", "48k") and not name.startswith("mp3"):
        # lossless and sample-aligned: the stems are the truth (the short stem's last frame aside)
        assert all(scores.loc[stem, "identical"] or scores.loc[stem, "si_sdr"] > 25 for stem in STEMS)


def test_the_conform_steps_say_what_was_done(variants):
    steps = [str(s) for s in stemlab.StemSet.open(variants["mixed-rate"]).conform().steps]
    assert "vocals: resampled from 48,000 Hz to 44,100 Hz (soxr, high quality)" in steps
    short = stemlab.StemSet.open(variants["frame-short"]).conform()
    assert [str(s) for s in short.steps] == ["bass: padded with 1,152 samples (26.1 ms) of silence at the end"]
    tagless = stemlab.check(variants["mp3-tagless-vbr"])
    assert sum(s.action == "delay" and s.samples == 1105 for s in tagless.steps) == 4
    assert stemlab.check(variants["mixed-rate"]).to_dict()["stems"][0]["native_sr"] == 48000


def test_a_mixed_rate_folder_decodes_every_stem_at_the_set_rate(variants):
    s = stemlab.StemSet.open(variants["mixed-rate"])
    assert s.sr == SR and s["vocals"].native_sr == 48000
    assert s["vocals"].audio.shape[1] in (LENGTH, LENGTH + 1)  # resampled, not mislabelled
    assert s["vocals"].duration == pytest.approx(LENGTH / SR, abs=1e-4)  # its true duration


def test_a_tagless_mp3_lines_up_with_its_tagged_twin_sample_for_sample(tmp_path):
    vocals = rock()["vocals"]
    tagged = mp3_bytes(vocals, SR, quality=0.1)
    (tmp_path / "tagged.mp3").write_bytes(tagged)
    (tmp_path / "tagless.mp3").write_bytes(strip_xing_frame(tagged))
    a, _ = decode(tmp_path / "tagged.mp3")
    b, _ = decode(tmp_path / "tagless.mp3")
    assert probe(tmp_path / "tagged.mp3").gapless == "tag" and probe(tmp_path / "tagless.mp3").gapless == "standard-delay"
    assert a.shape[1] == LENGTH and b.shape[1] >= LENGTH  # the tag-less one keeps the encoder's padding
    np.testing.assert_allclose(b[:, :LENGTH], a, atol=1e-4)  # miniaudio against libsndfile: decoder rounding
    assert abs(stemlab.dsp.estimate_lag(a, b[:, :LENGTH], max_lag=2000, excerpt=SR)) == 0


def test_a_tagless_cbr_mp3_is_not_padded_with_zeros(tmp_path):
    wav, mp3 = tmp_path / "in.wav", tmp_path / "cbr.mp3"
    sf.write(wav, rock()["drums"].T, SR, subtype="FLOAT")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(wav), "-c:a", "libmp3lame", "-b:a", "192k",
                    "-write_xing", "0", str(mp3)], check=True)
    estimate, facts = sf.info(str(mp3)).frames, probe(mp3)
    audio, _ = decode(mp3)
    assert estimate > facts.frames + facts.skip  # libsndfile's estimate: reading that many would pad zeros
    assert audio.shape[1] == facts.frames and (facts.frames + facts.skip) % 1152 == 0  # whole frames, less the delay
    assert np.abs(audio[:, -1]).max() > 0 or np.abs(audio[:, -400:]).max() > 0  # no run of padded zeros at the end


def test_a_tagless_vbr_set_served_by_the_sandbox_recombines(tmp_path, sandbox_env):
    """The sandbox serves MUSDB's stems as tag-less VBR MP3s and the mixture as a tagged one."""
    from stemlab.sandbox import Sandbox
    from stemlab.sandbox.library import write_song

    tracks = rock()
    stems = {name: strip_xing_frame(mp3_bytes(tracks[name], SR, quality=0.1)) for name in STEMS}
    write_song(tmp_path / "library", "rock", stems={"vocals": stems["vocals"], "drums": stems["drums"],
                                                      "bass": stems["bass"], "guitar": stems["other"]},
               source=mp3_bytes(tracks["mixture"], SR, quality=0.1), two={})
    with Sandbox(tmp_path / "library") as sb:
        env = {**sandbox_env, "STEMLAB_CQTAI_URL": sb.cqtai_url, "STEMLAB_SUNO_CDN_URL": sb.suno_cdn_url,
               "CQTAI_API_KEY": "sk-test"}
        run = [sys.executable, "-m", "stemlab"]
        fetched = subprocess.run([*run, "fetch", "cqtai", "rock", "--json", "--quiet"], env=env, capture_output=True,
                                 text=True, timeout=120)
        assert fetched.returncode == 0, fetched.stderr
        checked = subprocess.run([*run, "check", "rock", "--json"], env=env, capture_output=True, text=True,
                                 timeout=120)
    report = json.loads(checked.stdout)
    assert checked.returncode == 0, report["problems"]
    # the JSON contract: every field of 0.1 keeps its meaning, new ones are added
    assert set(report) >= {"ok", "source_duration", "lag_samples", "gain", "residual_db", "stems", "problems",
                           "culprits", "missing", "limited", "fitted_residual_db", "steps"}
    assert set(report["stems"][0]) >= {"name", "duration", "delta_s", "ok", "silent", "native_sr", "lag_samples",
                                       "gain_db", "polarity", "verdict"}
    assert report["ok"] is True and report["culprits"] == [] and report["gain"] == pytest.approx(1.0, abs=0.01)
    assert report["lag_samples"] == 0 and report["residual_db"] < -25
    assert {step["action"] for step in report["steps"]} >= {"delay"}
    manifest = json.loads(next((tmp_path / "cache" / "sets").glob("cqtai-12-rock/manifest.json")).read_text())
    assert {s["decode"]["gapless"] for s in manifest["stems"]} == {"standard-delay"}
    assert manifest["source"]["decode"]["gapless"] == "tag"
    reopened = stemlab.open_set("rock", cache_dir=tmp_path / "cache")
    assert all(track.info == probe(track.path) for track in reopened.tracks())  # the recorded facts are the file's
    assert manifest["expected_stems"][:2] == ["vocals", "backing_vocals"]


def test_a_provider_set_lacking_stems_of_its_split_names_them(tmp_path, sandbox_env):
    from stemlab.sandbox import Sandbox
    from stemlab.sandbox.library import write_song

    tracks = rock()
    write_song(tmp_path / "library", "rock", stems={n: mp3_bytes(tracks[n], SR) for n in ("vocals", "drums", "bass")},
               source=mp3_bytes(tracks["mixture"], SR), two={})
    with Sandbox(tmp_path / "library") as sb:
        fetched = stemlab.fetch("cqtai", clip_id="rock", settings=sb.settings(cache_dir=tmp_path / "cache"),
                                progress=False)
    report = stemlab.check(fetched)
    assert not report.ok and "guitar" in report.missing and len(report.missing) == 9
    assert any(p.startswith("a part seems to be missing") and "this set lacks backing_vocals, guitar" in p
               for p in report.problems)


def test_identical_sets_are_identical_not_a_big_number(variants):
    comparison = stemlab.compare(variants["flac"], variants["wav24"])
    agreement = comparison.table[comparison.table.metric == "agreement_si_sdr"]
    assert agreement.identical.all() and (agreement.value == math.inf).all()
    assert "identical" in comparison._repr_html_()
    rows = json.loads(comparison.to_json())["rows"]
    assert all(r["value"] is None and r["identical"] for r in rows if r["metric"] == "agreement_si_sdr")
    comparison.plot()  # infinite values are left out of the axes
    low, high = comparison.ax_.get_ylim()
    assert np.isfinite([low, high]).all() and high < 200
