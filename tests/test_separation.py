"""Local separation: every method gives canonical stems that add up to the mix, cached, and does
what it claims on signals built to satisfy (or not) its assumption."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import stemlab
from stemlab.errors import UsageError
from stemlab.separation import METHODS, separate

SR = 22050


def methods_doc() -> str:
    """The table of methods in stemlab.separation.methods."""
    from stemlab.separation import methods

    return methods.__doc__


def si_sdr(reference, estimate):
    """Scale-invariant SDR in dB, from its definition (Le Roux et al. 2019), channels flattened."""
    s, e = np.ravel(reference).astype(np.float64), np.ravel(estimate).astype(np.float64)
    target = (np.dot(e, s) / np.dot(s, s)) * s
    return 10 * np.log10(np.sum(target ** 2) / np.sum((e - target) ** 2))


def stereo(x, pan=0.0):
    angle = (pan + 1) * np.pi / 4
    return np.stack([np.cos(angle) * x, np.sin(angle) * x]).astype(np.float32) * np.sqrt(2)


@pytest.fixture(scope="module")
def parts():
    """Steady chords, a click track and a hard-panned noise bed, 8 s."""
    rng = np.random.default_rng(0)
    t = np.arange(8 * SR) / SR
    chords = sum(0.08 * np.sin(2 * np.pi * f * t) for f in (220, 277, 330, 440))
    clicks = np.zeros_like(t)
    for start in range(0, len(t), SR // 4):
        n = min(400, len(t) - start)
        clicks[start:start + n] = 0.5 * rng.standard_normal(n) * np.exp(-np.arange(n) / 60)
    return {"chords": stereo(chords), "clicks": stereo(clicks), "noise": stereo(0.05 * rng.standard_normal(len(t)), 0.9)}


@pytest.mark.parametrize("method", ["hpss", "repet-sim", "center", "nmf"])
def test_every_method_returns_canonical_stems_that_sum_to_the_mix(method, parts):
    mix = sum(parts.values())
    result = separate(mix, method=method, sr=SR)
    assert result.provider == "local" and result.manifest["method"] == method
    assert set(result.names) <= {"vocals", "instrumental", "drums", "bass", "other"} and len(result) >= 2
    total = sum(np.asarray(s.audio, dtype=np.float64) for s in result)
    assert si_sdr(mix, total) > 60  # masks that sum to one (FLAC storage adds ~-144 dB)
    assert stemlab.check(result).ok


def test_results_are_cached_and_force_recomputes(parts):
    mix = sum(parts.values())
    first = separate(mix, method="hpss", sr=SR, kernel=9)
    manifest = first.folder / "manifest.json"
    os.utime(manifest, ns=(10**9, 10**9))  # an explicit old mtime: any rewrite changes it
    again = separate(mix, method="hpss", sr=SR, kernel=9)
    assert again.folder == first.folder and manifest.stat().st_mtime_ns == 10**9  # read from the cache
    assert again.manifest["params"] == {"kernel": 9, "margin": 1.0, "power": 2.0, "n_fft": 2048, "hop": 1024}
    other = separate(mix, method="hpss", sr=SR, kernel=31)
    assert other.folder != first.folder
    assert separate(mix, method="hpss", sr=SR, kernel=9, force=True).folder == first.folder
    assert manifest.stat().st_mtime_ns != 10**9  # force computed and wrote it again


def test_hpss_puts_clicks_in_drums(parts):
    mix = sum(parts.values())
    result = separate(mix, method="hpss", sr=SR)
    assert si_sdr(parts["clicks"], result["drums"].audio) > si_sdr(parts["clicks"], mix) + 6
    assert si_sdr(parts["chords"], result["other"].audio) > si_sdr(parts["chords"], mix) + 3


def test_center_extracts_what_is_panned_to_the_middle(parts):
    mix = parts["chords"] + parts["noise"]  # chords in the centre, noise hard right
    result = separate(mix, method="center", sr=SR)
    assert si_sdr(parts["chords"], result["vocals"].audio) > si_sdr(parts["chords"], mix) + 10
    with pytest.raises(UsageError, match="stereo"):
        separate(mix[:1], method="center", sr=SR)


def test_repet_sim_keeps_what_does_not_repeat():
    rng = np.random.default_rng(3)
    loop = rng.standard_normal(SR // 2) * np.exp(-np.arange(SR // 2) / 2000)  # a half-second drum loop
    background = np.tile(loop, 24) * 0.2
    voice, length = np.zeros_like(background), len(background) // 40
    for i, note in enumerate(rng.integers(60, 80, size=40)):  # a tune that never repeats
        if i % 3 != 2:
            f = 440 * 2 ** ((note - 69) / 12)
            voice[i * length:(i + 1) * length] = 0.15 * np.sin(2 * np.pi * f * np.arange(length) / SR) * np.hanning(length)
    mix = stereo(background + voice)
    result = separate(mix, method="repet-sim", sr=SR)
    assert si_sdr(stereo(voice), result["vocals"].audio) > si_sdr(stereo(voice), mix) + 3
    assert si_sdr(stereo(background), result["instrumental"].audio) > si_sdr(stereo(background), mix) + 3


def test_nmf_names_a_low_steady_part_bass(parts):
    t = np.arange(8 * SR) / SR
    bass = stereo(0.3 * np.sin(2 * np.pi * 55 * t) * (1 + 0.2 * np.sin(2 * np.pi * 0.5 * t)))
    result = separate(bass + parts["clicks"] + parts["chords"], method="nmf", sr=SR, components=8)
    assert "bass" in result.names and "drums" in result.names
    assert si_sdr(bass, result["bass"].audio) > 5


def test_oracle_masks_are_the_upper_bound_on_the_demo_song():
    song = stemlab.demo_song()
    ratio = separate(song, method="oracle")
    binary = separate(song, method="oracle", mask="binary")
    assert ratio.names == song.names and ratio.manifest["params"]["mask"] == "ratio"
    vocals = np.asarray(song["vocals"].audio)
    assert si_sdr(vocals, ratio["vocals"].audio) > 10
    assert si_sdr(vocals, ratio["vocals"].audio) > si_sdr(vocals, binary["vocals"].audio)
    assert not np.any(ratio["fx"].audio)  # silent true stems stay silent


def test_inputs_files_and_errors(parts, tmp_path):
    mix = sum(parts.values())
    sf.write(tmp_path / "mix.wav", mix.T, SR)
    from_file = separate(tmp_path / "mix.wav", method="center")
    assert from_file.sr == SR and json.loads((from_file.folder / "manifest.json").read_text())["request"]["input"]
    with pytest.raises(UsageError, match="unknown separation method 'demucs'"):
        separate(mix, method="demucs", sr=SR)
    with pytest.raises(UsageError, match="oracle needs the true stems"):
        separate(mix, method="oracle", sr=SR)
    with pytest.raises(UsageError, match="does not take kernal"):
        separate(mix, method="hpss", sr=SR, kernal=9)
    with pytest.raises(UsageError, match="sr="):
        separate(mix, method="hpss")
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for name in METHODS:  # every method is documented where users look
        assert f"| `{name}` |" in readme and f"``{name}``" in methods_doc()
