"""Synthetic songs, the library format, and the MP3 helpers."""

from __future__ import annotations

import io
import json
import time

import miniaudio
import numpy as np
import pytest
import soundfile as sf

from stemlab.errors import ConfigError
from stemlab.sandbox import (derive_two, encode_mp3, make_library, mix, mp3_duration, read_library,
                             read_song, strip_xing_frame, synth_stems, tagless_vbr_mp3, write_song)
from stemlab.taxonomy import TWELVE_STEMS

SR = 22050


@pytest.fixture(scope="module")
def stems():
    return synth_stems(duration=2.0, sr=SR, silent=("brass",), seed=3)


def test_synth_stems_shape_determinism_and_silence(stems):
    assert list(stems) == list(TWELVE_STEMS)
    assert all(a.shape == (2, 2 * SR) and a.dtype == np.float32 for a in stems.values())
    assert not stems["brass"].any()
    again = synth_stems(duration=2.0, sr=SR, silent=("brass",), seed=3)
    assert all(np.array_equal(stems[n], again[n]) for n in stems)
    drums = [synth_stems(duration=2.0, sr=SR, names=("drums",), seed=seed)["drums"] for seed in (3, 4)]
    assert not np.array_equal(*drums)
    assert 0.5 < np.abs(mix(stems)).max() < 1.0


def test_stems_are_distinct_and_panned(stems):
    sounding = {n: a.mean(axis=0) for n, a in stems.items() if a.any()}
    names = list(sounding)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            x, y = sounding[a], sounding[b]
            corr = abs(float(x @ y)) / float(np.linalg.norm(x) * np.linalg.norm(y))
            assert corr < 0.9, (a, b)
    left, right = np.abs(stems["guitar"]).sum(axis=1)
    assert left > 2 * right


def test_unknown_stem_names_get_a_tone():
    assert synth_stems(duration=0.5, sr=SR, names=("theremin",))["theremin"].any()


def test_derive_two_groups_vocals_and_the_rest(stems):
    two = derive_two(stems)
    np.testing.assert_allclose(two["vocals"], stems["vocals"] + stems["backing_vocals"], atol=1e-6)
    np.testing.assert_allclose(two["vocals"] + two["instrumental"], mix(stems), atol=1e-5)


def test_write_song_from_arrays_reads_back(tmp_path, stems):
    song = write_song(tmp_path, "s1", stems=stems, sr=SR, title="First", labels={"fx": "FX/Other"})
    assert song.title == "First" and song.clip_id == "s1" and song.labels == {"fx": "FX/Other"}
    assert list(song.stems) == list(TWELVE_STEMS) and list(song.two) == ["vocals", "instrumental"]
    assert song.source.is_file() and len(song.tracks) == 1 and song.tracks[0].song_id == "s1"
    meta = json.loads((tmp_path / "s1" / "song.json").read_text())
    assert meta["parent_job_id"] == song.parent_job_id
    audio, rate = sf.read(song.two["vocals"], always_2d=True)
    assert rate == SR and audio.shape[1] == 2
    assert song.duration("stems/drums") == pytest.approx(2.0, abs=0.06)
    assert read_library(tmp_path)["s1"] == song


def test_write_song_from_mp3_bytes_and_paths(tmp_path, stems):
    vocals = encode_mp3(stems["vocals"], SR)
    (tmp_path / "bass.mp3").write_bytes(encode_mp3(stems["bass"], SR))
    song = write_song(tmp_path / "lib", "s2", source=vocals,
                      stems={"vocals": vocals, "bass": tmp_path / "bass.mp3"})
    assert list(song.stems) == ["vocals", "bass"] and song.two == {}
    with pytest.raises(ConfigError):
        write_song(tmp_path / "lib", "s3", stems={"vocals": vocals})


def test_stated_durations_win_over_measured(tmp_path, stems):
    song = write_song(tmp_path, "s", stems={"bass": stems["bass"]}, sr=SR, durations={"stems/bass": 9.5})
    assert song.duration("stems/bass") == 9.5
    info = sf.info(song.source)
    assert song.duration("source") == pytest.approx(info.frames / info.samplerate, abs=1e-6)


def test_read_library_checks_consistency(tmp_path, stems):
    quiet = {"bass": stems["bass"][:, :SR // 4]}
    write_song(tmp_path, "a", stems=quiet, sr=SR, clip_id="same")
    (tmp_path / ".hidden").mkdir()
    assert list(read_library(tmp_path)) == ["a"]
    write_song(tmp_path, "b", stems=quiet, sr=SR, clip_id="same")
    with pytest.raises(ConfigError, match="clip id 'same'"):
        read_library(tmp_path)
    write_song(tmp_path, "b", stems=quiet, sr=SR, tracks=[{}, {"song": "ghost"}])
    with pytest.raises(ConfigError, match="unknown song 'ghost'"):
        read_library(tmp_path)
    (tmp_path / "b" / "source.mp3").unlink()
    with pytest.raises(ConfigError, match="no source.mp3"):
        read_song(tmp_path / "b")


def test_make_library_links_the_second_take(tmp_path):
    songs = make_library(tmp_path, ("x", "y"), duration=0.5, sr=SR)
    assert [t.song_id for t in songs["x"].tracks] == ["x", "y"]
    assert set(read_library(tmp_path)) == {"x", "y"}


def test_strip_xing_frame_makes_a_tagless_vbr_file(tmp_path, stems):
    audio = stems["vocals"]
    original = encode_mp3(audio, SR)
    tagless = tagless_vbr_mp3(audio, SR)
    assert len(tagless) < len(original) and strip_xing_frame(tagless) == tagless
    path = tmp_path / "tagless.mp3"
    path.write_bytes(tagless)
    true_frames = miniaudio.mp3_get_file_info(str(path)).num_frames
    assert sf.info(io.BytesIO(tagless)).frames < true_frames  # libsndfile stops early
    assert true_frames >= audio.shape[1]
    assert mp3_duration(path) == pytest.approx(audio.shape[1] / SR, abs=0.1)
    id3 = b"ID3\x04\x00\x00\x00\x00\x00\x0a" + b"\x00" * 10  # empty 10-byte ID3v2 tag body
    assert strip_xing_frame(id3 + original) == id3 + tagless
    assert strip_xing_frame(b"plain bytes") == b"plain bytes"


def test_encoding_twelve_six_second_stems_is_quick(tmp_path):
    stems = synth_stems(duration=6.0, sr=44100)
    source = encode_mp3(np.zeros((2, 4410), np.float32))
    started = time.perf_counter()
    write_song(tmp_path, "long", stems=stems, source=source, two={})
    elapsed = time.perf_counter() - started
    assert elapsed < 4.0, f"encoding 12 x 6 s stems took {elapsed:.2f} s"  # ~0.7-1.3 s on 2 cores
