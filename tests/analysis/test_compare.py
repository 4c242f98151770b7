"""compare(): common taxonomy, alignment, resampling, metrics with and without a reference, CLI."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import stemlab
from stemlab.analysis.compare import METRICS, compare
from stemlab.errors import UsageError
from stemlab.sandbox.synth import synth_stems

SR = 22050
NAMES = ("vocals", "backing_vocals", "drums", "bass", "guitar", "brass")


def noisy(x, level_db, seed):
    """``x`` plus white noise ``level_db`` below it."""
    noise = np.random.default_rng(seed).standard_normal(x.shape).astype(np.float32)
    return x + noise * np.sqrt(np.sum(x ** 2) / np.sum(noise ** 2)) * 10 ** (level_db / 20)


def write_set(folder, stems, *, sr=SR, mixture=None):
    folder.mkdir(parents=True, exist_ok=True)
    for name, audio in stems.items():
        sf.write(folder / f"{name}.wav", audio.T, sr, subtype="FLOAT")
    if mixture is not None:
        sf.write(folder / "mixture.wav", mixture.T, sr, subtype="FLOAT")
    return stemlab.StemSet.open(folder)


@pytest.fixture(scope="module")
def truth_stems():
    stems = synth_stems(duration=4.0, sr=SR, names=NAMES, silent=("brass",), seed=21)
    return {n: (noisy(a, -60, i) if n != "brass" else a) for i, (n, a) in enumerate(stems.items())}


@pytest.fixture
def truth(tmp_path, truth_stems):
    return write_set(tmp_path / "truth", truth_stems, mixture=sum(truth_stems.values()))


def value(result, set_label, stem, metric):
    rows = result.table[(result.table.set == set_label) & (result.table.stem == stem) & (result.table.metric == metric)]
    assert len(rows) == 1, (set_label, stem, metric)
    return float(rows.value.iloc[0])


def test_scores_against_a_reference_follow_the_formula(tmp_path, truth, truth_stems):
    estimate = {n: (noisy(a, -10, 7) if n != "brass" else a) for n, a in truth_stems.items()}
    result = compare(write_set(tmp_path / "est", estimate), reference=truth)
    assert set(result.table.metric) <= set(METRICS)
    assert list(result.table.columns) == ["set", "stem", "metric", "value", "silent", "identical"]
    assert value(result, "est", "vocals", "si_sdr") == pytest.approx(10.0, abs=0.2)  # noise 10 dB down
    assert value(result, "est", "vocals", "sdr") == pytest.approx(10.0, abs=1.0)
    assert math.isnan(value(result, "est", "brass", "si_sdr"))  # silent in the truth: NaN, flagged
    assert result.table[(result.table.stem == "brass") & (result.table.metric == "sdr")].silent.all()
    decoded = json.loads(result.to_json())
    assert set(decoded) == {"sets", "alignment", "rows"}
    assert all(set(r) == {"set", "stem", "metric", "value", "silent", "identical"} for r in decoded["rows"])
    assert any(r["value"] is None for r in decoded["rows"])  # NaN becomes null, never inf
    assert "set,stem,metric,value,silent,identical" in result.to_csv().splitlines()[0]


def test_sets_of_different_granularity_meet_on_common_groups(tmp_path, truth, truth_stems):
    two = {"vocals": truth_stems["vocals"] + truth_stems["backing_vocals"],
           "instrumental": sum(a for n, a in truth_stems.items() if n not in ("vocals", "backing_vocals"))}
    result = compare(write_set(tmp_path / "two", two), reference=truth)
    assert list(result.groups) == ["vocals", "instrumental"]
    assert result.groups["vocals"] == ["backing_vocals", "vocals"]
    assert value(result, "two", "vocals", "si_sdr") > 50  # the exact grouping of the true stems


def test_lag_and_sample_rate_are_aligned_and_reported(tmp_path, truth, truth_stems):
    delay = 1105
    late = {n: np.pad(a, ((0, 0), (delay, 0))) for n, a in truth_stems.items()}
    result = compare(write_set(tmp_path / "late", late), reference=truth)
    assert result.alignment["late"]["lag_samples"] == delay
    assert value(result, "late", "drums", "si_sdr") > 40
    import librosa

    slow = {n: librosa.resample(a, orig_sr=SR, target_sr=16000) for n, a in truth_stems.items()}
    resampled = compare(write_set(tmp_path / "slow", slow, sr=16000), reference=truth)
    assert resampled.alignment["slow"]["resampled_from"] == 16000 and resampled.sr == SR
    assert value(resampled, "slow", "bass", "si_sdr") > 15
    with pytest.raises(UsageError, match="too far apart"):
        compare(write_set(tmp_path / "tiny", {n: a[:, ::16] for n, a in truth_stems.items()}, sr=SR // 16),
                reference=truth)


def test_without_a_reference_agreement_leakage_and_loudness(tmp_path, truth_stems):
    a = write_set(tmp_path / "a", {"vocals": truth_stems["vocals"], "drums": truth_stems["drums"]})
    bleed = truth_stems["vocals"] + truth_stems["drums"]
    b = write_set(tmp_path / "b", {"vocals": bleed, "drums": truth_stems["drums"]})
    result = compare(a, b)
    assert value(result, "a vs b", "vocals", "agreement_si_sdr") == pytest.approx(
        value(result, "b vs a", "vocals", "agreement_si_sdr"))  # SI-SDR depends on the correlation only
    assert value(result, "a vs b", "drums", "agreement_si_sdr") > 50
    v, d = (np.sum(truth_stems[n].astype(np.float64) ** 2) for n in ("vocals", "drums"))
    assert value(result, "b", "vocals", "leakage") == pytest.approx(d / (v + d), rel=0.05)  # the drums' share
    assert value(result, "a", "vocals", "leakage") < 0.01
    level = 10 * np.log10(np.mean(truth_stems["drums"].astype(np.float64) ** 2))
    assert value(result, "a", "drums", "loudness_db") == pytest.approx(level, abs=0.01)
    assert result.reference is None and result.plot().ax_ is not None


def test_unusable_input_is_a_clear_error(tmp_path, truth_stems):
    drums = write_set(tmp_path / "d", {"drums": truth_stems["drums"], "other": truth_stems["bass"]})
    voices = write_set(tmp_path / "v", {"vocals": truth_stems["vocals"], "instrumental": truth_stems["bass"]})
    with pytest.raises(UsageError, match="no stems in common"):
        compare(drums, voices)
    with pytest.raises(UsageError, match="two sets"):
        compare(drums)


def test_cli_compare_on_folders(tmp_path, truth, truth_stems):
    estimate = write_set(tmp_path / "est", {n: noisy(a, -20, 3) for n, a in truth_stems.items()})
    run = [sys.executable, "-m", "stemlab", "compare", str(estimate.folder), "--reference", str(truth.folder)]
    out = subprocess.run([*run, "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    decoded = json.loads(out.stdout)
    assert [s["name"] for s in decoded["sets"]] == ["est"]
    assert {r["metric"] for r in decoded["rows"]} >= {"si_sdr", "sdr", "sir", "sar", "sdr_improvement", "loudness_db"}
    csv = subprocess.run([*run, "--csv", "--no-bss"], capture_output=True, text=True)
    assert csv.returncode == 0 and csv.stdout.startswith("set,stem,metric,value,silent")
    voices = write_set(tmp_path / "v", {"vocals": truth_stems["vocals"], "instrumental": truth_stems["bass"]})
    drums = write_set(tmp_path / "d", {"drums": truth_stems["drums"], "other": truth_stems["bass"]})
    bad = subprocess.run([sys.executable, "-m", "stemlab", "compare", str(voices.folder), str(drums.folder)],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("stemlab: error: these sets have no stems in common")
