"""Paired statistics of the provider study, checked against independent references: scipy's
bootstrap, the coverage of the interval on simulated songs, simulated t-tests and the textbook
sample size, and hand-computed summaries (plus a plain-Python recount, with hypothesis)."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from stemlab.analysis.paired import SUMMARY_COLUMNS, bootstrap_mean_ci, paired_summary, songs_needed
from stemlab.errors import UsageError

# ------------------------------------------------------------------------------- bootstrap


@pytest.mark.parametrize("n, draw", [(5, "normal"), (12, "exponential"), (40, "normal"), (200, "standard_t")])
def test_bootstrap_interval_is_scipy_s(n, draw):
    rng = np.random.default_rng(n)
    sample = getattr(rng, draw)(size=n) if draw != "standard_t" else rng.standard_t(3, size=n)
    theirs = stats.bootstrap((sample,), np.mean, method="percentile", n_resamples=100_000,
                             rng=np.random.default_rng(1)).confidence_interval
    ours = bootstrap_mean_ci(sample, resamples=20_000, seed=2)
    # Monte Carlo error of a 2.5% quantile of 20 000 means is ~0.03 standard errors (sd/sqrt(n)):
    # 0.05 sd is over 4 such errors even at n = 5
    assert ours == pytest.approx((theirs.low, theirs.high), abs=0.05 * sample.std())


def test_bootstrap_interval_covers_the_true_mean_about_as_often_as_it_says():
    rng = np.random.default_rng(7)
    samples = rng.normal(loc=1.5, scale=2.0, size=(300, 30))
    covered = sum(low <= 1.5 <= high for low, high in
                  (bootstrap_mean_ci(s, resamples=2_000, seed=k) for k, s in enumerate(samples)))
    # the percentile interval of a mean of 30 normal values covers ~93.6% (it is a z interval with
    # the biased sd); P(covered < 261) ~ 1e-5 and P(covered > 297) ~ 1e-6 at that rate, while an
    # interval twice too wide (~100%) or too narrow (~68%) falls outside
    assert 261 <= covered <= 297, covered


def test_bootstrap_is_seeded_and_chunked_without_changing_the_answer(monkeypatch):
    sample = np.random.default_rng(3).normal(size=50)
    first = bootstrap_mean_ci(sample, seed=11)
    assert bootstrap_mean_ci(sample, seed=11) == first
    assert bootstrap_mean_ci(sample, seed=12) != first
    import stemlab.analysis.paired as paired

    monkeypatch.setattr(paired, "CHUNK", 50 * 7)  # 7 resamples per chunk, the last one short
    assert bootstrap_mean_ci(sample, seed=11) == pytest.approx(first, abs=0.02)


def test_bootstrap_edge_cases():
    assert bootstrap_mean_ci([4.25]) == (4.25, 4.25)
    assert bootstrap_mean_ci([0.1, 0.1, 0.1]) == (np.mean([0.1] * 3),) * 2
    # two songs: the resampled means are -3, -2, -1 with probabilities 1/4, 1/2, 1/4
    assert bootstrap_mean_ci([-1.0, -3.0]) == (-3.0, -1.0)
    low, high = bootstrap_mean_ci([-1.0, -3.0], confidence=0.4)
    assert low == high == -2.0
    for bad in ([], np.ones((2, 2)), [1.0, math.nan], [1.0, math.inf]):
        with pytest.raises(UsageError):
            bootstrap_mean_ci(bad)
    for kwargs in ({"confidence": 1.0}, {"confidence": 0}, {"resamples": 0}, {"resamples": 2.5}):
        with pytest.raises(UsageError):
            bootstrap_mean_ci([1.0, 2.0], **kwargs)


# ---------------------------------------------------------------------------- songs needed


def simulated_power(n: int, sd: float, effect: float, alpha: float, trials: int = 20_000, seed: int = 0) -> float:
    diffs = np.random.default_rng(seed).normal(effect, sd, size=(trials, n))
    return float((stats.ttest_1samp(diffs, 0.0, axis=1).pvalue < alpha).mean())


@pytest.mark.parametrize("sd, effect, alpha, power", [(1.0, 0.5, 0.05, 0.8), (2.0, 0.5, 0.01, 0.9),
                                                      (0.3, 0.5, 0.05, 0.8), (1.5, 0.5, 0.05, 0.5)])
def test_songs_needed_gives_the_power_a_simulated_t_test_has(sd, effect, alpha, power):
    n = songs_needed(sd, effect_db=effect, alpha=alpha, power=power)
    # 20 000 trials: the simulated power's standard error is at most 0.0035; 0.015 is over 4 of them
    assert simulated_power(n, sd, effect, alpha) >= power - 0.015
    if n > 2:
        assert simulated_power(n - 1, sd, effect, alpha, seed=1) < power + 0.015


def test_songs_needed_is_the_textbook_number():
    # normal approximation of the paired t-test's sample size, with the usual t correction z^2/2
    z = stats.norm.ppf
    approximate = ((z(0.975) + z(0.8)) * 1.0 / 0.5) ** 2 + z(0.975) ** 2 / 2
    assert 33 < approximate < 34
    assert songs_needed(1.0, effect_db=0.5, alpha=0.05, power=0.8) == 34  # G*Power: d = 0.5 -> 34
    assert songs_needed(1.0, effect_db=1.0) == 10                         # d = 1 -> 10
    assert songs_needed(2.0, effect_db=1.0) == 34                         # only the ratio counts
    assert songs_needed(0.01, effect_db=5.0) == 2                         # never fewer than two


@pytest.mark.parametrize("kwargs", [{"sd_diff": 0.0}, {"sd_diff": -1.0}, {"sd_diff": math.nan},
                                    {"sd_diff": math.inf}, {"effect_db": 0.0}, {"alpha": 0.0}, {"alpha": 1.0},
                                    {"power": 1.0}, {"power": -0.1}, {"sd_diff": "1"}])
def test_songs_needed_refuses_nonsense(kwargs):
    arguments = {"sd_diff": 1.0, **kwargs}
    with pytest.raises(UsageError):
        songs_needed(arguments.pop("sd_diff"), **arguments)


# --------------------------------------------------------------------------- paired summary


def results_frame(rows) -> pd.DataFrame:
    return pd.DataFrame([{"song": song, "set": provider, "provider": provider, "stem": stem, "metric": metric,
                          "value": float(value), "silent": bool(silent),
                          "flags": "identical" if value == math.inf else ""}
                         for song, provider, stem, metric, value, silent in rows])


HAND = results_frame([
    # vocals si_sdr
    ("s1", "apiframe", "vocals", "si_sdr", 10.0, False),
    ("s2", "apiframe", "vocals", "si_sdr", 12.0, False),
    ("s3", "apiframe", "vocals", "si_sdr", math.nan, True),
    ("s4", "apiframe", "vocals", "si_sdr", 8.0, False),
    ("s1", "cqtai", "vocals", "si_sdr", 11.0, False),
    ("s2", "cqtai", "vocals", "si_sdr", 15.0, False),
    ("s3", "cqtai", "vocals", "si_sdr", 9.0, False),
    ("s4", "cqtai", "vocals", "si_sdr", 7.0, True),           # finite but silent: left out
    ("s1", "cqtai-two", "vocals", "si_sdr", math.inf, False),  # identical: not a finite number
    ("s2", "cqtai-two", "vocals", "si_sdr", 13.0, False),
    ("s3", "cqtai-two", "vocals", "si_sdr", 10.0, False),
    # drums: the two providers never share a song
    ("s1", "apiframe", "drums", "si_sdr", 5.0, False),
    ("s2", "cqtai", "drums", "si_sdr", 6.0, False),
    ("s1", "cqtai", "drums", "si_sdr", math.nan, False),
    # the mix: recombination check
    ("s1", "apiframe", "mix", "residual_db", -40.0, False),
    ("s1", "cqtai", "mix", "residual_db", -30.0, False),
    ("s2", "apiframe", "mix", "residual_db", -42.0, False),
    ("s2", "cqtai", "mix", "residual_db", -35.0, False),
    # agreement: ignored, whatever provider it is filed under
    ("s1", "cqtai vs apiframe", "vocals", "agreement_si_sdr", 20.0, False),
    ("s1", "cqtai", "vocals", "agreement_si_sdr", 20.0, False),
    ("s1", "apiframe", "vocals", "agreement_si_sdr", 25.0, False),
    ("s1", "cqtai vs apiframe", "vocals", "si_sdr", 3.0, False),
])


def test_summary_of_a_hand_built_study():
    summary = paired_summary(HAND, resamples=4_000)
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    got = summary[["metric", "stem", "a", "b", "n", "mean_a", "mean_b", "mean_diff"]].values.tolist()
    assert got == [
        ["residual_db", "mix", "apiframe", "cqtai", 2, -41.0, -32.5, -8.5],    # -10, -7
        ["si_sdr", "vocals", "apiframe", "cqtai", 2, 11.0, 13.0, -2.0],        # s1, s2: -1, -3
        ["si_sdr", "vocals", "apiframe", "cqtai-two", 1, 12.0, 13.0, -1.0],    # s2
        ["si_sdr", "vocals", "cqtai", "cqtai-two", 2, 12.0, 11.5, 0.5],        # s2, s3: 2, -1
    ]
    vocals = summary.set_index(["metric", "stem", "a", "b"]).loc[("si_sdr", "vocals")]
    assert vocals.loc[("apiframe", "cqtai"), ["ci_low", "ci_high"]].tolist() == [-3.0, -1.0]
    assert vocals.loc[("cqtai", "cqtai-two"), ["ci_low", "ci_high"]].tolist() == [-1.0, 2.0]
    assert vocals.loc[("apiframe", "cqtai-two"), ["ci_low", "ci_high"]].tolist() == [-1.0, -1.0]
    assert vocals.sd_diff.tolist()[0] == pytest.approx(math.sqrt(2))
    assert math.isnan(vocals.loc[("apiframe", "cqtai-two"), "sd_diff"])
    assert (summary.confidence == 0.95).all() and (summary.resamples == 4_000).all()
    assert summary.n.dtype == np.int64


def test_summary_is_deterministic_and_follows_its_seed_and_confidence():
    rng = np.random.default_rng(5)
    rows = [(f"s{k}", provider, "vocals", "si_sdr", rng.normal(), False) for k in range(20)
            for provider in ("apiframe", "cqtai")]
    study = results_frame(rows)
    first = paired_summary(study, seed=3)
    pd.testing.assert_frame_equal(paired_summary(study.sample(frac=1, random_state=1), seed=3), first)
    assert paired_summary(study, seed=4).ci_low[0] != first.ci_low[0]
    narrow = paired_summary(study, seed=3, confidence=0.5)
    assert first.ci_low[0] < narrow.ci_low[0] < narrow.ci_high[0] < first.ci_high[0]
    assert narrow.confidence[0] == 0.5


def test_empty_results_give_an_empty_summary():
    for empty in (pd.DataFrame(), HAND.iloc[:0], HAND[HAND.metric == "agreement_si_sdr"]):
        summary = paired_summary(empty)
        assert summary.empty and list(summary.columns) == list(SUMMARY_COLUMNS)


def test_repeated_rows_are_refused():
    twice = pd.concat([HAND, HAND.iloc[[1]].assign(value=99.0)], ignore_index=True)
    with pytest.raises(UsageError, match="several rows.*apiframe, s2, vocals, si_sdr"):
        paired_summary(twice)
    with pytest.raises(UsageError, match="missing: silent"):
        paired_summary(HAND.drop(columns="silent"))


value = st.floats(min_value=-60, max_value=60) | st.sampled_from([math.nan, math.inf])
key = st.tuples(st.sampled_from(["s1", "s2", "s3", "s4", "s5"]), st.sampled_from(["apiframe", "cqtai", "cqtai-two"]),
                st.sampled_from(["vocals", "mix"]), st.sampled_from(["si_sdr", "leakage"]))
studies = st.dictionaries(key, st.tuples(value, st.booleans()), max_size=60)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(study=studies)
def test_summary_agrees_with_a_plain_recount(study):
    results = results_frame([(*k, v, silent) for k, (v, silent) in study.items()])
    summary = paired_summary(results, resamples=200)
    usable = {k: v for k, (v, silent) in study.items() if math.isfinite(v) and not silent}
    expected = {}
    for (song, a, stem, metric), va in usable.items():
        for (song_b, b, stem_b, metric_b), vb in usable.items():
            if (song_b, stem_b, metric_b) == (song, stem, metric) and a < b:
                expected.setdefault((metric, stem, a, b), []).append((va, vb))
    assert sorted(expected) == [tuple(r) for r in summary[["metric", "stem", "a", "b"]].values.tolist()]
    for row in summary.itertuples():
        pairs = expected[(row.metric, row.stem, row.a, row.b)]
        assert row.n == len(pairs)
        assert row.mean_a == pytest.approx(np.mean([p[0] for p in pairs]))
        assert row.mean_b == pytest.approx(np.mean([p[1] for p in pairs]))
        assert row.mean_diff == pytest.approx(row.mean_a - row.mean_b, abs=1e-9)
        assert row.ci_low <= row.mean_diff <= row.ci_high
