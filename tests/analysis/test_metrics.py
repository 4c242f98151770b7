"""Tests of stemlab.analysis.metrics against independent references.

* BSSEval v4: museval (``museval.metrics.bss_eval`` with museval.evaluate's settings), on
  deterministic fixtures: tones, noise bursts and low-passed noise, with estimates made
  of the reference through a short filter, leakage from another stem and noise.
* SI-SDR: the formula written out below in plain numpy.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.signal import lfilter

from stemlab.analysis import bsseval
from stemlab.analysis.metrics import (
    MAX_DB, BssScores, bss_eval, evaluate, is_silent, median_over_frames, ratio_db, rms_db, sdr,
    silence_threshold,
    sdr_improvement, si_sdr, validate,
)
from stemlab.errors import UsageError

museval = pytest.importorskip("museval", reason="museval is the reference implementation (pip install museval)")

SR = 44100
TOLERANCE_DB = 0.05
METRICS = ("sdr", "isr", "sir", "sar")


# ----------------------------------------------------------------------------------- fixtures


def make_references(*, seconds: float = 6.0, seed: int = 0) -> np.ndarray:
    """Three deterministic stereo stems ``(3, 2, samples)``: a harmonic tone, low-passed noise and
    noise bursts (silent from 3 s to 4 s), each channel with its own faint noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    tone = sum(np.sin(2 * np.pi * 220 * k * t) / k for k in range(1, 6)) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))
    bass = lfilter([1.0], [1.0, -0.98], rng.standard_normal(n)) * 0.1
    bursts = rng.standard_normal(n) * np.exp(-((t % 0.5) / 0.08))
    bursts[3 * SR:4 * SR] = 0.0
    refs = []
    for mono, (left, right) in zip((tone, bass, bursts), ((1.0, 0.7), (0.8, 0.8), (0.6, 1.0))):
        mono = 0.1 * mono / np.abs(mono).max()
        refs.append([left * mono, right * mono])
    refs = np.array(refs)
    refs += 1e-3 * rng.standard_normal(refs.shape) * (np.abs(refs).max(axis=-1, keepdims=True) > 0)
    refs[2, :, 3 * SR:4 * SR] = 0.0
    return refs


def make_estimates(refs: np.ndarray, *, seed: int = 1) -> np.ndarray:
    """Each reference through a short filter, plus leakage from the next stem, plus noise."""
    rng = np.random.default_rng(seed)
    leakage = np.array([0.05, 0.1, 0.2])[: len(refs), None, None]
    filtered = lfilter([1.0, 0.2, -0.1], [1.0], refs, axis=-1)
    return filtered + leakage * np.roll(refs, -1, axis=0) + 0.003 * rng.standard_normal(refs.shape)


def museval_bss_eval(refs: np.ndarray, ests: np.ndarray, *, window=SR, hop=SR) -> dict[str, np.ndarray]:
    """museval.metrics.bss_eval as museval.evaluate calls it, on stemlab-layout arrays."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = museval.metrics.bss_eval(np.moveaxis(refs, 1, 2), np.moveaxis(ests, 1, 2), window=window, hop=hop,
                                          compute_permutation=False, filters_len=512, framewise_filters=False,
                                          bsseval_sources_version=False)
    return dict(zip(METRICS, values[:4]))


def assert_matches(ours, reference: dict[str, np.ndarray], *, rows=slice(None)) -> None:
    """Every metric within TOLERANCE_DB wherever museval has a number (it blanks silent frames)."""
    for name in METRICS:
        expected = reference[name]
        actual = np.asarray(getattr(ours, name))[rows].reshape(expected.shape)
        finite = np.isfinite(expected)
        assert finite.any()
        np.testing.assert_allclose(actual[finite], expected[finite], atol=TOLERANCE_DB, rtol=0, err_msg=name)


@pytest.fixture(scope="module")
def refs() -> np.ndarray:
    return make_references()


@pytest.fixture(scope="module")
def ests(refs) -> np.ndarray:
    return make_estimates(refs)


@pytest.fixture(scope="module")
def museval_frames(refs, ests) -> dict[str, np.ndarray]:
    return museval_bss_eval(refs, ests)


EXCERPT = slice(0, 2 * SR)  # whole-signal museval runs are slow: they use the first 2 s


@pytest.fixture(scope="module")
def museval_whole(refs, ests) -> dict[str, np.ndarray]:
    return museval_bss_eval(refs[..., EXCERPT], ests[..., EXCERPT], window=np.inf, hop=np.inf)


@pytest.fixture(scope="module")
def museval_without_stem_1(refs, ests) -> tuple[dict, dict]:
    """museval on stems 0 and 2 only: framewise (first 3 s) and whole signal (first 2 s)."""
    others = [0, 2]
    return (museval_bss_eval(refs[others][..., : 3 * SR], ests[others][..., : 3 * SR]),
            museval_bss_eval(refs[others][..., EXCERPT], ests[others][..., EXCERPT], window=np.inf, hop=np.inf))


@pytest.fixture(scope="module")
def ours(refs, ests):
    return bss_eval(refs, ests, layout="stemlab")


# ------------------------------------------------------------------------------------ SI-SDR


def reference_si_sdr(s: np.ndarray, s_hat: np.ndarray) -> float:
    """Le Roux et al. 2019, eq. (4): alpha = <s, s_hat> / ||s||², 10 log10(||alpha s||² / ||alpha s - s_hat||²)."""
    s, s_hat = s.ravel(), s_hat.ravel()
    alpha = np.dot(s, s_hat) / np.dot(s, s)
    target = alpha * s
    return 10 * np.log10(np.sum(target**2) / np.sum((target - s_hat) ** 2))


@pytest.mark.parametrize("source", range(3))
def test_si_sdr_matches_the_formula(refs, ests, source):
    assert si_sdr(refs[source], ests[source]) == pytest.approx(reference_si_sdr(refs[source], ests[source]), abs=0.01)
    assert si_sdr(refs[source, 0], ests[source, 0]) == pytest.approx(
        reference_si_sdr(refs[source, 0], ests[source, 0]), abs=0.01)


def test_si_sdr_ignores_gain_and_can_remove_the_mean(refs, ests):
    assert si_sdr(refs[0], 3.0 * ests[0]) == pytest.approx(si_sdr(refs[0], ests[0]), abs=1e-9)
    offset = ests[0] + 0.05
    centred = reference_si_sdr(refs[0] - refs[0].mean(), offset - offset.mean())
    assert si_sdr(refs[0], offset, zero_mean=True) == pytest.approx(centred, abs=0.01)
    assert si_sdr(refs[0], offset) < centred - 1.0  # the offset counts as distortion by default


def test_si_sdr_of_silence_is_nan_not_an_error(refs):
    assert np.isnan(si_sdr(np.zeros((2, 1000)), refs[0, :, :1000]))
    assert np.isnan(si_sdr(1e-5 * refs[0], refs[0]))           # about -77 dBFS: silent
    assert np.isnan(si_sdr(refs[0], np.zeros_like(refs[0])))  # <s, 0> = 0: no finite value


# --------------------------------------------------------------------------- BSSEval vs museval


def test_framewise_scores_match_museval(ours, museval_frames):
    assert ours.frames.sdr.shape == museval_frames["sdr"].shape == (3, 6)
    assert_matches(ours.frames, museval_frames)


def test_medians_match_museval(ours, museval_frames):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = {name: np.nanmedian(value, axis=1) for name, value in museval_frames.items()}
    # stemlab keeps the frame where stem 2 is silent for the other stems; museval blanks it for all
    kept_by_museval = np.isfinite(museval_frames["sdr"][0])
    same_frames = median_over_frames(BssScores(*(getattr(ours.frames, name)[:, kept_by_museval] for name in METRICS)))
    assert_matches(same_frames, expected)


def test_whole_signal_scores_match_museval_with_one_infinite_window(refs, ests, museval_whole):
    assert_matches(bss_eval(refs[..., EXCERPT], ests[..., EXCERPT], layout="stemlab", framewise=False).whole,
                   museval_whole)


def test_overlapping_frames_match_museval_defaults(refs, ests):
    window, hop = 2 * SR, int(1.5 * SR)  # museval.metrics.bss_eval's own defaults
    n = int(3.5 * SR)
    expected = museval_bss_eval(refs[:3, :, :n], ests[:3, :, :n], window=window, hop=hop)
    ours = bss_eval(refs[:3, :, :n], ests[:3, :, :n], window=window, hop=hop, layout="stemlab")
    np.testing.assert_array_equal(ours.frame_starts, [0, hop])
    assert_matches(ours.frames, expected)


def test_layouts_and_dtypes_give_the_same_scores(refs, ests):
    excerpt_refs, excerpt_ests = refs[..., EXCERPT], ests[..., EXCERPT]
    stemlab_layout = bss_eval(excerpt_refs, excerpt_ests, layout="stemlab")
    museval_layout = bss_eval(np.moveaxis(excerpt_refs, 1, 2), np.moveaxis(excerpt_ests, 1, 2).astype(np.float32))
    for name in METRICS:
        np.testing.assert_allclose(getattr(museval_layout.frames, name), getattr(stemlab_layout.frames, name),
                                   atol=1e-3)


def test_mono_sources_match_museval(refs, ests):
    mono_refs, mono_ests = refs[:3, 0, : 3 * SR], ests[:3, 0, : 3 * SR]
    expected = museval_bss_eval(mono_refs[:, None], mono_ests[:, None])
    assert_matches(bss_eval(mono_refs, mono_ests).frames, expected)


def test_a_signal_shorter_than_a_window_is_one_whole_frame(refs, ests):
    short_refs, short_ests = refs[:2, :, :30000], ests[:2, :, :30000]
    ours = bss_eval(short_refs, short_ests, layout="stemlab")
    assert ours.frames.sdr.shape == (2, 1)
    np.testing.assert_array_equal(ours.frame_starts, [0])
    for name in METRICS:
        np.testing.assert_allclose(getattr(ours.frames, name)[:, 0], getattr(ours.whole, name), atol=1e-9)
    assert_matches(ours.frames, museval_bss_eval(short_refs, short_ests))  # museval 0.4.1 agrees


def test_panned_mono_stems_match_museval(refs, ests):
    """Right channel = g x left channel: museval's matrix is singular (it falls back to lstsq);
    stemlab drops the dead channel combination from the basis and gets the same projections."""
    panned = refs[:2, :1, : 3 * SR] * np.array([1.0, 0.5])[None, :, None]
    panned_ests = ests[:2, :, : 3 * SR]
    assert_matches(bss_eval(panned, panned_ests, layout="stemlab").frames, museval_bss_eval(panned, panned_ests))


# ------------------------------------------------------------------------------------ silence


def test_silence_is_relative_to_the_mix_with_an_absolute_backstop(refs, ests):
    assert rms_db(np.full((2, 100), 0.01)) == pytest.approx(-40.0)
    assert silence_threshold(np.full((2, 100), 0.1)) == pytest.approx(-80.0)   # 60 dB below a -20 dBFS mix
    assert silence_threshold(np.full((2, 100), 1e-5)) == -100.0                 # the backstop
    assert is_silent(np.zeros((2, 10))) and is_silent(1e-6 * np.ones(10)) and not is_silent(1e-4 * np.ones(10))
    assert is_silent(1e-4 * np.ones(10), threshold_db=-60.0)
    # a genuinely quiet reference at -70 dBFS in a -20 dBFS mix is not silent (it was, at -60 dBFS absolute)
    quiet = refs.copy()
    quiet[1] *= 10 ** ((-70 - rms_db(refs[1])) / 20)
    result = bss_eval(quiet[..., EXCERPT], ests[..., EXCERPT], layout="stemlab", framewise=False)
    assert not result.reference_silent.any()
    # scaling the whole set changes no flag and no score
    for scale in (0.1, 10.0):
        scaled = bss_eval(scale * quiet[..., EXCERPT], scale * ests[..., EXCERPT], layout="stemlab", framewise=False)
        assert scaled.reference_silent.tolist() == result.reference_silent.tolist()
        np.testing.assert_allclose(scaled.whole.sdr, result.whole.sdr, atol=1e-6)


@pytest.mark.parametrize("silence", ["zeros", "quiet noise"])
def test_a_silent_reference_is_nan_and_leaves_the_others_as_museval_without_it(refs, ests, silence,
                                                                             museval_without_stem_1):
    with_silence = refs.copy()
    quiet = 1e-5 * np.random.default_rng(5).standard_normal(refs[1].shape)  # -100 dBFS: 75 dB below the mix
    with_silence[1] = 0.0 if silence == "zeros" else quiet
    ours = bss_eval(with_silence[..., : 3 * SR], ests[..., : 3 * SR], layout="stemlab")
    assert ours.reference_silent.tolist() == [False, True, False]
    assert not ours.estimate_silent.any()
    for name in METRICS:
        assert np.isnan(getattr(ours.frames, name)[1]).all() and np.isnan(getattr(ours.whole, name)[1])
    frames, whole = museval_without_stem_1
    assert_matches(ours.frames, frames, rows=[0, 2])
    excerpt = bss_eval(with_silence[..., EXCERPT], ests[..., EXCERPT], layout="stemlab", framewise=False)
    assert_matches(excerpt.whole, whole, rows=[0, 2])


def test_a_silent_estimate_is_nan_in_every_column_and_flagged(refs, ests, museval_whole):
    silent_estimate = ests[..., EXCERPT].copy()
    silent_estimate[2] = 0.0
    ours = bss_eval(refs[..., EXCERPT], silent_estimate, layout="stemlab", framewise=False)
    assert ours.estimate_silent.tolist() == [False, False, True]
    assert all(np.isnan(getattr(ours.whole, name)[2]) for name in METRICS)  # was SDR 0.0, improvement +2.9
    names = ["tone", "bass", "bursts"]
    row = evaluate(dict(zip(names, refs[..., EXCERPT])), dict(zip(names, silent_estimate)),
                   mixture=refs[..., EXCERPT].sum(axis=0)).rows()[2]
    assert row["estimate_silent"] and all(np.isnan(row[name]) for name in ("si_sdr", "sdr_improvement") + METRICS)
    # each estimate is projected on its own, so the other stems are untouched
    for name in METRICS:
        np.testing.assert_allclose(getattr(ours.whole, name)[:2], museval_whole[name][:2, 0], atol=TOLERANCE_DB)


def test_a_correct_silence_is_nan_with_both_flags(refs, ests):
    silent_refs, silent_ests = refs.copy(), ests.copy()
    silent_refs[0] = silent_ests[0] = 0.0
    names = ["a", "b", "c"]
    scores = evaluate(dict(zip(names, silent_refs)), dict(zip(names, silent_ests)))
    row = scores.rows()[0]
    assert row["reference_silent"] and row["estimate_silent"]
    assert all(np.isnan(row[name]) for name in ("si_sdr",) + METRICS)
    assert not any(np.isnan(scores.rows()[1][name]) for name in ("si_sdr",) + METRICS)


def test_frames_where_a_reference_is_silent_are_nan_for_that_stem_only(ours, museval_frames):
    silent_second = 3
    assert np.isnan(ours.frames.sdr[2, silent_second])
    assert np.isfinite(ours.frames.sdr[[0, 1], silent_second]).all()
    assert np.isnan(museval_frames["sdr"][:, silent_second]).all()  # museval blanks every stem


def test_one_non_silent_reference_has_no_interference_to_measure(refs, ests):
    lonely = refs.copy()
    lonely[1:] = 0.0
    ours = bss_eval(lonely, ests, layout="stemlab")
    assert np.isnan(ours.whole.sir[0]) and np.isnan(ours.frames.sir[0]).all()
    assert np.isfinite(ours.whole.sar[0]) and np.isfinite(ours.whole.sdr[0])


def test_identical_signals_are_inf_and_flagged_and_nothing_else_is(refs):
    scores = evaluate({"a": refs[0], "b": refs[1]}, {"a": refs[0], "b": refs[1] + 1e-9}, mixture=refs[0] + refs[1])
    a, b = scores["a"], scores["b"]
    assert a.identical and all(getattr(a, name) == np.inf for name in ("si_sdr", "sdr_improvement") + METRICS)
    assert not b.identical and all(np.isfinite(getattr(b, name)) for name in ("si_sdr",) + METRICS)
    assert b.sdr > 140  # a tiny but real error is measured, not called identical
    assert si_sdr(refs[0], 0.5 * refs[0]) == np.inf and sdr(refs[0], refs[0]) == np.inf
    assert ratio_db(1.0, 0.0) == MAX_DB and np.isnan(ratio_db(0.0, 0.0)) and np.isnan(ratio_db(0.0, 1.0))


# ----------------------------------------------------------------------- improvement, evaluate


def test_sdr_improvement_over_the_mixture(refs, ests):
    mixture = refs.sum(axis=0)
    expected = 10 * np.log10(np.sum(refs[0] ** 2) / np.sum((ests[0] - refs[0]) ** 2)) - 10 * np.log10(
        np.sum(refs[0] ** 2) / np.sum((mixture - refs[0]) ** 2))
    assert sdr_improvement(refs[0], ests[0], mixture) == pytest.approx(expected, abs=1e-9)
    assert sdr(refs[0], ests[0]) == pytest.approx(bss_eval(refs, ests, layout="stemlab").whole.sdr[0], abs=1e-6)
    assert np.isnan(sdr_improvement(np.zeros_like(refs[0]), ests[0], mixture))


def test_evaluate_reports_every_stem(refs, ests, ours):
    names = ["tone", "bass", "bursts"]
    mixture = refs.sum(axis=0)
    scores = evaluate(dict(zip(names, refs)), dict(zip(names, ests)), mixture=mixture)
    assert scores.names == names and scores.summary == "median over frames"
    assert (scores.window, scores.hop) == (SR, SR)
    median = ours.median()
    for row, stem in enumerate(scores.stems):
        assert stem.sdr == pytest.approx(median.sdr[row], abs=1e-6)
        assert stem.si_sdr == pytest.approx(si_sdr(refs[row], ests[row]))
        assert stem.frames.sdr.shape == (6,) and stem.frames.start[1] == 1.0
        assert not stem.reference_silent and not stem.estimate_silent
    frame_gain = scores["tone"].sdr_improvement
    frame_mixture = [sdr(refs[0, :, s:s + SR], mixture[:, s:s + SR]) for s in range(0, 6 * SR, SR)]
    assert frame_gain == pytest.approx(scores["tone"].sdr - np.median(frame_mixture), abs=1e-6)
    whole = evaluate(dict(zip(names, refs)), dict(zip(names, ests)), mixture=mixture, framewise=False)
    assert whole.summary == "whole signal" and whole["tone"].frames is None
    assert whole["tone"].sdr_improvement == pytest.approx(sdr_improvement(refs[0], ests[0], mixture), abs=1e-6)
    assert set(scores.rows()[0]) == {"name", "si_sdr", "sdr", "isr", "sir", "sar", "sdr_improvement",
                                     "reference_silent", "estimate_silent", "identical"}
    assert evaluate({"tone": refs[0, :, :SR]}, {"tone": ests[0, :, :SR]})["tone"].sdr_improvement is None


@pytest.mark.parametrize("references, estimates, message", [
    ({"bass": np.zeros((2, 10))}, {"Bass": np.zeros((2, 10))}, "estimates lack 'bass'"),
    ({"bass": np.zeros((2, 10))}, {"bass": np.zeros((2, 12))}, "trim or pad"),
    ({"bass": np.zeros((10, 2))}, {"bass": np.zeros((10, 2))}, "looks like (samples, channels)"),
    ({"bass": np.zeros((2, 10), np.int16)}, {"bass": np.zeros((2, 10))}, "divide by 32768"),
    ({"bass": np.full((2, 10), np.nan)}, {"bass": np.zeros((2, 10))}, "NaN or inf"),
    ({}, {}, "no references"),
])
def test_validate_says_what_to_fix(references, estimates, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate(references, estimates)


def test_bss_eval_rejects_bad_arrays_with_usage_errors(refs, ests):
    with pytest.raises(UsageError, match="one estimate per reference"):
        bss_eval(refs, ests[:2], layout="stemlab")
    with pytest.raises(UsageError, match="layout="):
        bss_eval(refs, ests, layout="channels_last")
    with pytest.raises(UsageError, match="window"):
        bss_eval(refs, ests, window=0)


# ------------------------------------------------------------------------------ building blocks


def test_lagged_correlations_are_exact_correlations():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((2, 3, 20000))
    ours = bsseval.lagged_correlations(x, y, n_lags=40)
    for i, k in [(0, 0), (1, 2), (2, 1)]:
        direct = [np.dot(x[i, lag:], y[k, : len(y[k]) - lag]) for lag in range(40)]  # Σ_m x[m + lag] y[m]
        np.testing.assert_allclose(ours[:, i, k], direct, rtol=1e-9, atol=1e-9)


def test_block_toeplitz_product_matches_the_dense_matrix():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 2000))
    correlations = bsseval.lagged_correlations(x, x, n_lags=16)
    filters = rng.standard_normal((16, 3, 5))
    dense = bsseval.block_toeplitz_dense(correlations) @ filters.reshape(48, 5)
    np.testing.assert_allclose(bsseval.block_toeplitz_matmul(correlations, filters).reshape(48, 5), dense,
                               rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("n_samples, window, hop", [(10 * SR, SR, SR), (10 * SR + 5, 2 * SR, 66150), (1000, SR, SR)])
def test_frames_are_cut_like_museval(n_samples, window, hop):
    framing = museval.metrics.Framing(window, hop, n_samples)
    expected = [frame.start for frame in framing]
    np.testing.assert_array_equal(bsseval.frame_starts(n_samples, window=window, hop=hop), expected)


def test_next_fast_len_is_smallest_5_smooth_size():
    def smooth(n):
        for p in (2, 3, 5):
            while n % p == 0:
                n //= p
        return n == 1
    for n in (1, 7, 1000, 44611, 65537):
        size = bsseval.next_fast_len(n)
        assert size >= n and smooth(size) and not any(smooth(m) for m in range(n, size))


# ------------------------------------------------------------------- nonsense refused, precision


def _exact_si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """SI-SDR in extended precision (np.longdouble, 64-bit mantissa on x86), an independent check."""
    s, e = reference.astype(np.longdouble).ravel(), estimate.astype(np.longdouble).ravel()
    alpha = np.dot(s, e) / np.dot(s, s)
    error = alpha * s - e
    return float(10 * np.log10(np.dot(alpha * s, alpha * s) / np.dot(error, error)))


@pytest.mark.parametrize("dtype, target_db", [(np.float32, 120.0), (np.float64, 120.0), (np.float64, 140.0)])
def test_high_scores_read_true(dtype, target_db):
    rng = np.random.default_rng(11)
    reference = (0.2 * rng.standard_normal((2, 200_000))).astype(dtype)
    noise = rng.standard_normal(reference.shape)
    noise *= 0.7 * np.sqrt(np.sum(reference.astype(float) ** 2) / np.sum(noise ** 2)) * 10 ** (-target_db / 20)
    estimate = (0.7 * reference.astype(float) + noise).astype(dtype)
    truth = _exact_si_sdr(reference, estimate)
    assert abs(truth - target_db) < 1  # the arrays really are near the target (float32 rounding included)
    assert si_sdr(reference, estimate) == pytest.approx(truth, abs=0.01)
    truth_sdr = float(10 * np.log10(np.sum(reference.astype(np.longdouble) ** 2)
                                    / np.sum((estimate.astype(np.longdouble) - reference) ** 2)))
    assert sdr(reference, estimate) == pytest.approx(truth_sdr, abs=0.01)


def test_transposed_layouts_and_non_finite_values_are_refused(refs):
    stem = refs[0]
    with pytest.raises(UsageError, match=r"looks like \(samples, channels\).*audio\.T"):
        si_sdr(stem, stem.T.copy())
    with pytest.raises(UsageError, match="same shape"):
        sdr(stem, stem[:, :-1])
    for bad in (np.nan, np.inf):
        broken = stem.copy()
        broken[1, 100] = bad
        with pytest.raises(UsageError, match="NaN or inf"):
            si_sdr(stem, broken)
        with pytest.raises(UsageError, match="NaN or inf"):
            sdr(broken, stem)
