"""The comparison's statistics are honest, proved on synthetic data with seeded generators:
A/A comparisons flag "regressed" at about alpha or less, a 10 % shift is found at the power
docs/regression.md states, and too few runs give "not enough samples", never a verdict."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_runs import run_calls

from loadgate.regression import compare as C
from loadgate.regression import figures as F
from loadgate.regression import stats

ALPHA = stats.ALPHA
TRIALS = 1000
# Binomial slack on a rate measured over 1,000 trials: 3 standard deviations at alpha.
SLACK = 3 * np.sqrt(ALPHA * (1 - ALPHA) / TRIALS)
TTFT_P99 = F.FIGURES["ttft_p99_ms"]
OPTS = C.Options()


def share(verdicts: list[str], which: str) -> float:
    return float(np.mean([v == which for v in verdicts]))


# -- order statistics and the exact test ----------------------------------------------------------


def test_median_interval_is_the_order_statistic_pair_with_95_percent_coverage():
    med, ci = stats.median_ci(np.arange(1.0, 11.0))  # n = 10
    assert med == 5.5
    # [x(2), x(9)] covers with 1 - 2 P(B <= 1) = 0.9785; [x(3), x(8)] only 0.89
    assert (ci.lo, ci.hi) == (2.0, 9.0) and ci.confidence == pytest.approx(0.978515625)
    _, small = stats.median_ci(np.arange(5.0))  # n = 5: no pair reaches 95 %
    assert (small.lo, small.hi) == (0.0, 4.0) and small.confidence == pytest.approx(0.9375)


def test_median_interval_covers_the_true_median_at_least_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(TRIALS):
        _, ci = stats.median_ci(rng.lognormal(0.0, 0.5, 10))  # true median 1.0
        hits += ci.lo <= 1.0 <= ci.hi
    assert hits / TRIALS >= 0.95 - SLACK


def test_mann_whitney_cannot_reach_alpha_with_three_runs_a_side():
    assert stats.min_mann_whitney_p(3, 3) == pytest.approx(0.1)
    assert stats.min_mann_whitney_p(4, 4) == pytest.approx(2 / 70)
    separated = stats.mann_whitney_p(np.arange(4.0), np.arange(10.0, 14.0))
    assert separated == pytest.approx(2 / 70)


# -- several runs per side --------------------------------------------------------------------------


def runs(rng: np.random.Generator, n: int, centre: float, cv: float) -> list[float]:
    return list(centre * rng.lognormal(0.0, cv, n))


def test_aa_across_runs_flags_regressed_at_most_alpha():
    rng = np.random.default_rng(2)
    verdicts = [
        C.across_runs(TTFT_P99, runs(rng, 10, 100, 0.10), runs(rng, 10, 100, 0.10), OPTS).verdict
        for _ in range(TRIALS)
    ]
    assert share(verdicts, "regressed") <= ALPHA
    significant = share(verdicts, "regressed") + share(verdicts, "improved")
    assert significant <= ALPHA + SLACK


def test_a_10_percent_shift_is_found_with_the_stated_power():
    # docs/regression.md: 10 runs a side, run-to-run noise CV 5 %, 10 % slower: power >= 0.9
    rng = np.random.default_rng(3)
    verdicts = [
        C.across_runs(TTFT_P99, runs(rng, 10, 100, 0.05), runs(rng, 10, 110, 0.05), OPTS).verdict
        for _ in range(TRIALS)
    ]
    assert share(verdicts, "regressed") >= 0.9
    assert share(verdicts, "improved") == 0.0


def test_higher_is_better_figures_regress_downwards():
    goodput = F.FIGURES["goodput_per_s"]
    rng = np.random.default_rng(4)
    est = C.across_runs(goodput, runs(rng, 10, 100, 0.02), runs(rng, 10, 80, 0.02), OPTS)
    assert est.verdict == "regressed" and est.change == pytest.approx(-0.2, abs=0.03)
    est = C.across_runs(goodput, runs(rng, 10, 80, 0.02), runs(rng, 10, 100, 0.02), OPTS)
    assert est.verdict == "improved"


def test_too_few_runs_give_not_enough_samples_never_a_verdict():
    rng = np.random.default_rng(5)
    for _ in range(200):
        est = C.across_runs(TTFT_P99, runs(rng, 3, 100, 0.01), runs(rng, 3, 200, 0.01), OPTS)
        assert est.verdict == "not enough samples" and est.p is None
    assert "needs >= 4 per side" in est.note


def test_a_significant_change_below_the_floor_is_no_change():
    rng = np.random.default_rng(6)
    est = C.across_runs(TTFT_P99, runs(rng, 10, 100, 0.002), runs(rng, 10, 103, 0.002), OPTS)
    assert est.p < ALPHA and est.change == pytest.approx(0.03, abs=0.005)
    assert est.verdict == "no change"


# -- one run per side: block bootstrap over time buckets ----------------------------------------------


def single(spec: F.FigureSpec, trials: int, seed: int, scale: float = 1.0, **noise) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(trials):
        a, b = run_calls(rng, **noise), run_calls(rng, scale=scale, **noise)
        out.append(C.within_run(spec, a, b, C.Options(seed=i)).verdict)
    return out


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_aa_single_runs_flag_regressed_at_most_alpha():
    # per-call noise 30 %, the whole stack's speed wandering 10 % from second to second
    verdicts = single(TTFT_P99, TRIALS, seed=7, phi=0.0, sd=0.1, sigma=0.3)
    assert share(verdicts, "regressed") <= ALPHA
    assert share(verdicts, "regressed") + share(verdicts, "improved") <= ALPHA + SLACK
    assert share(verdicts, "not enough samples") < 0.1  # still a verdict most of the time


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_correlated_noise_is_refused_rather_than_flagged():
    # The stack's speed persists for seconds (lag-1 correlation 0.8): the block bootstrap alone
    # would call such A/A pairs different far too often; the correlation check refuses them.
    verdicts = single(F.FIGURES["ttft_p50_ms"], 300, seed=8, phi=0.8, sd=0.1, sigma=0.3)
    assert share(verdicts, "regressed") <= ALPHA
    assert share(verdicts, "not enough samples") > 0.5


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_10_percent_shift_in_one_run_is_found_with_the_stated_power():
    # docs/regression.md: one 60 s run a side at 15 calls/s, noise as above: the median TTFT's
    # 10 % shift with power >= 0.85, the p99's only with ~0.3 (say so, do not pretend).
    p50 = single(F.FIGURES["ttft_p50_ms"], 300, seed=9, scale=1.1, sd=0.1, sigma=0.3)
    assert share(p50, "regressed") >= 0.85
    p99 = single(TTFT_P99, 300, seed=10, scale=1.1, sd=0.1, sigma=0.3)
    assert 0.15 <= share(p99, "regressed") <= 0.5
    assert share(p50, "improved") == share(p99, "improved") == 0.0


def test_one_short_or_sparse_run_gives_not_enough_samples():
    rng = np.random.default_rng(11)
    short = C.within_run(TTFT_P99, run_calls(rng, seconds=8), run_calls(rng, seconds=8), OPTS)
    assert short.verdict == "not enough samples"
    sparse_a, sparse_b = run_calls(rng, rate=2.0), run_calls(rng, rate=2.0, scale=3.0)
    sparse = C.within_run(TTFT_P99, sparse_a, sparse_b, OPTS)
    assert sparse.verdict == "not enough samples" and "needs >= 300" in sparse.note
    assert C.within_run(F.FIGURES["ttft_p50_ms"], sparse_a, sparse_b, OPTS).verdict == "regressed"


def test_identical_runs_are_no_change():
    rng = np.random.default_rng(12)
    a = run_calls(rng)
    est = C.within_run(TTFT_P99, a, a, OPTS)
    assert est.verdict == "no change" and est.change == 0.0 and est.p > 0.5
    assert est.baseline.lo < est.baseline.value < est.baseline.hi
