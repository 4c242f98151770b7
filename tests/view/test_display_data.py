"""Envelopes and spectrogram tiles: checked against brute-force computations on known signals."""

import numpy as np
import pytest

from stemlab.errors import UsageError
from stemlab.view.envelope import BLOCK, Envelopes, block_minmax
from stemlab.view.spectrogram import (HOP, LOG_FMIN, N_FFT, code_to_db, db_codes, frequency_ticks, pool, row_frequencies,
                                      shared_vmax_db, to_display)

SR = 25600  # 100 blocks of 256 per second: block and column edges line up exactly


@pytest.fixture(scope="module")
def noise():
    return np.random.default_rng(4).standard_normal((2, SR * 6)).astype(np.float32) * 0.3


def test_block_minmax_matches_numpy(noise):
    blocks = block_minmax(noise[:, :1000])
    assert blocks.shape == (2, 2, 4)
    np.testing.assert_array_equal(blocks[:, 0, 3], noise[:, 768:1000].min(axis=1))


def test_envelope_equals_brute_force_from_blocks_and_from_samples(noise):
    env = Envelopes(noise, SR)
    wide = env.envelope(0, 6, columns=60, channels="stereo")  # 2560 samples per column: blocks
    reference = noise.reshape(2, 60, -1)
    np.testing.assert_array_equal(wide[:, 0], reference.min(axis=2))
    np.testing.assert_array_equal(wide[:, 1], reference.max(axis=2))
    narrow = env.envelope(1.0, 1.1, columns=640, channels="mid")  # 4 samples per column: raw samples
    mid = ((noise[0] + noise[1]) * np.float32(0.5))[SR:SR + 2560].reshape(640, 4)
    np.testing.assert_array_equal(narrow[0, 0], mid.min(axis=1))
    given = Envelopes(noise * 0, SR, blocks=env.blocks)  # a given pyramid is what wide views read
    np.testing.assert_array_equal(given.envelope(0, 6, columns=60, channels="stereo"), wide)


def test_envelope_past_the_end_is_silent_and_points_are_samples(noise):
    env = Envelopes(noise, SR)
    tail = env.envelope(5.0, 7.0, columns=200)
    assert np.all(tail[..., 100:] == 0) and np.all(tail[0, 1, :100] > 0)
    points = env.points(2.0, 2.001, channels="stereo")
    np.testing.assert_array_equal(points, noise[:, 2 * SR: 2 * SR + 27])
    assert env.blocks.shape[-1] == -(-noise.shape[1] // BLOCK)  # one pyramid block per BLOCK samples


def test_db_codes_put_a_sine_at_its_level_and_frequency():
    sr = 22050
    f = 200 * sr / N_FFT  # on a bin centre
    tone = (0.25 * np.sin(2 * np.pi * f * np.arange(sr * 2) / sr)).astype(np.float32)
    codes = db_codes(np.stack([tone, tone]), sr)
    assert codes.shape == (N_FFT // 2 + 1, 1 + 2 * sr // HOP)
    column = codes[:, 40]
    assert int(np.argmax(column)) == 200
    assert code_to_db(column.max()) == pytest.approx(20 * np.log10(0.25), abs=0.3)


def test_pool_is_a_max_over_frames_and_bands():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 200, size=(1025, 400), dtype=np.uint8)
    image = pool(codes, 44100, 0.0, 400 * HOP / 44100, columns=100, rows=1024, scale="linear")
    assert image.shape == (1024, 100)
    # linear scale with one row per bin: each column is the max over its 4 frames, rows flipped
    frames_max = codes.reshape(1025, 100, 4).max(axis=2)
    np.testing.assert_array_equal(image[::-1][:1023], frames_max[:1023])
    np.testing.assert_array_equal(image[0], frames_max[1023:].max(axis=0))  # the top row takes 2 bins
    coarse = pool(codes, 44100, 0.0, 400 * HOP / 44100, columns=10, rows=16, scale="log")
    lowest = int(np.round(LOG_FMIN / (22050 / 1024)))  # the log axis starts at 30 Hz: bin 1
    expected = codes[lowest:].reshape(1025 - lowest, 10, 40).max(axis=(0, 2))  # each column: its 40 frames
    np.testing.assert_array_equal(coarse.max(axis=0), expected)


def test_frequency_axes_and_display_scale():
    for scale in ("linear", "log", "mel"):
        edges = row_frequencies(scale, 64, 44100)
        assert np.all(np.diff(edges) > 0) and edges[-1] == pytest.approx(22050)
        ticks = frequency_ticks(scale, 44100)
        assert ticks and all(0 <= f <= 1 for f, _ in ticks)
    with pytest.raises(UsageError, match="frequency scale"):
        row_frequencies("bark", 10, 44100)
    codes = np.array([[0, 200, 240]], dtype=np.uint8)  # -120, -20, 0 dB
    assert shared_vmax_db([codes]) == 0.0
    np.testing.assert_array_equal(to_display(codes, vmax_db=0.0, db_range=40.0), [[0, 127, 255]])
