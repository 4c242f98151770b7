"""Decoding: float32 (channels, samples), full length even for tag-less VBR MP3s, cached as .npy."""

import numpy as np
import pytest
import soundfile as sf

from stemlab.audio import decode, decode_cached, probe
from stemlab.encode import mp3_bytes
from stemlab.errors import DecodeError, UsageError
from stemlab.sandbox.synth import synth_stems, tagless_vbr_mp3

SR = 44100


@pytest.fixture(scope="module")
def guitar():
    """12 s of a synthesised stereo guitar part: long enough for libsndfile to truncate it when tag-less."""
    return synth_stems(duration=12.0, sr=SR, names=("guitar",), seed=3)["guitar"]


def test_mp3_decodes_to_exact_length_and_lag_zero(tmp_path, guitar):
    path = tmp_path / "guitar.mp3"
    path.write_bytes(mp3_bytes(guitar, SR))
    audio, sr = decode(path)
    assert sr == SR and audio.dtype == np.float32 and audio.shape == guitar.shape
    corr = [float(np.dot(audio[0, 20000:60000], guitar[0, 20000 + k:60000 + k])) for k in range(-3, 4)]
    assert int(np.argmax(corr)) == 3  # the Xing/Info tag trims the encoder delay exactly


def test_tagless_vbr_mp3_decodes_at_full_length(tmp_path, guitar):
    path = tmp_path / "tagless.mp3"
    path.write_bytes(tagless_vbr_mp3(guitar, SR))
    assert sf.info(str(path)).frames < 0.9 * guitar.shape[1], "libsndfile should under-count this file"
    assert guitar.shape[1] <= probe(path).frames <= guitar.shape[1] + 3 * 1152
    audio, _ = decode(path)
    # full length, give or take the encoder delay and padding a tag-less file cannot trim
    assert guitar.shape[1] <= audio.shape[1] <= guitar.shape[1] + 3 * 1152
    assert np.sqrt(np.mean(audio[:, -SR:] ** 2)) > 0.01, "the last second must hold sound, not zeros"


def test_mp3_blocks_match_an_independent_whole_file_decode(tmp_path, guitar):
    """libsndfile returns wrong samples around some block boundaries when an MP3 is read in several
    calls; stemlab streams blocks, so its output must equal a one-shot decode of the file."""
    path = tmp_path / "guitar.mp3"
    path.write_bytes(mp3_bytes(guitar, SR))
    whole = sf.read(str(path), dtype="float32")[0].T  # one call: libsndfile is right this way
    np.testing.assert_allclose(decode(path)[0], whole, atol=1e-4)
    np.testing.assert_allclose(decode_cached(path, tmp_path / "g.npy"), whole, atol=1e-4)


def test_mono_and_resample(tmp_path, guitar):
    path = tmp_path / "g.wav"
    sf.write(path, guitar.T, SR)
    mono, sr = decode(path, mono=True, sr=22050)
    assert sr == 22050 and mono.shape == (1, guitar.shape[1] // 2)
    np.testing.assert_allclose(decode(path, mono=True)[0][0], guitar.mean(axis=0), atol=1e-4)


def test_cached_decode_is_memory_mapped_and_identical(tmp_path, guitar):
    path = tmp_path / "g.mp3"
    path.write_bytes(mp3_bytes(guitar, SR))
    first = decode_cached(path, tmp_path / "derived" / "g.npy")
    assert isinstance(first, np.memmap) and not first.flags.writeable
    np.testing.assert_array_equal(np.asarray(first), decode(path)[0])
    path.unlink()  # the second open must not touch the MP3 at all
    again = decode_cached(path, tmp_path / "derived" / "g.npy")
    np.testing.assert_array_equal(np.asarray(again), np.asarray(first))
    assert [p.name for p in (tmp_path / "derived").iterdir()] == ["g.npy"]  # no temporary left behind


def test_damaged_cache_file_is_rebuilt(tmp_path, guitar):
    path = tmp_path / "g.wav"
    sf.write(path, guitar.T, SR)
    (tmp_path / "g.npy").write_bytes(b"not an npy file")
    np.testing.assert_allclose(decode_cached(path, tmp_path / "g.npy"), guitar, atol=1e-4)


def test_bad_inputs_are_clear(tmp_path):
    with pytest.raises(UsageError, match="no audio file"):
        decode(tmp_path / "missing.mp3")
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"\x00" * 1000)
    with pytest.raises(DecodeError, match="junk.mp3"):
        decode(junk)
    with pytest.raises(UsageError, match="sr must be"):
        decode(junk, sr=-1)
