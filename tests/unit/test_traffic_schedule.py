"""Arrival schedules: Poisson statistics, constant spacing, ramps, phase boundaries, streams."""

import random
from types import SimpleNamespace as P

import numpy as np
import pytest
from scipy import stats

from loadgate.traffic.schedule import arrivals, expected_arrivals, phase_at, segments


def ph(name, d, rate, ramp_to=None):
    return P(name=name, duration_s=d, rate=rate, ramp_to=ramp_to)


def test_poisson_interarrivals_are_exponential_with_the_rate():
    times = np.array([t for t, _ in arrivals([ph("s", 400, 50)], "poisson", rng=random.Random(1))])
    gaps = np.diff(times)
    assert abs(len(times) - 20000) < 4 * np.sqrt(20000)  # count ~ Poisson(20000)
    assert gaps.mean() == pytest.approx(1 / 50, rel=0.03)
    assert np.std(gaps) / gaps.mean() == pytest.approx(1.0, abs=0.03)  # CV of exponential = 1
    assert stats.kstest(gaps, "expon", args=(0, 1 / 50)).pvalue > 0.001


def test_poisson_counts_per_second_have_variance_equal_to_mean():
    times = [t for t, _ in arrivals([ph("s", 300, 40)], "poisson", rng=random.Random(7))]
    counts = np.bincount(np.floor(times).astype(int), minlength=300)[:300]
    assert counts.mean() == pytest.approx(40, rel=0.05)
    assert counts.var() / counts.mean() == pytest.approx(1.0, abs=0.25)


def test_constant_is_evenly_spaced_and_exact():
    out = list(arrivals([ph("s", 10, 20)], "constant"))
    assert len(out) == 200
    assert np.allclose(np.diff([t for t, _ in out]), 0.05)


def test_phase_boundaries_and_per_phase_counts():
    phases = [ph("warmup", 5, 10), ph("gap", 2, 0), ph("flood", 3, 100), ph("cooldown", 4, 5)]
    out = list(arrivals(phases, "constant"))
    by = {}
    for t, name in out:
        by.setdefault(name, []).append(t)
    assert {k: len(v) for k, v in by.items()} == {"warmup": 50, "flood": 300, "cooldown": 20}
    assert min(by["warmup"]) >= 0 and max(by["warmup"]) < 5
    assert min(by["flood"]) >= 7 and max(by["flood"]) < 10  # nothing in the zero-rate gap
    assert min(by["cooldown"]) >= 10 and max(by["cooldown"]) < 14
    assert [t for t, _ in out] == sorted(t for t, _ in out)
    assert phase_at(phases, 6.0) == "gap" and phase_at(phases, 99) == "cooldown"


def test_linear_ramp_follows_the_rate():
    phases = [ph("ramp", 10, 0, ramp_to=100)]  # Λ(t) = 5 t², 500 calls
    times = np.array([t for t, _ in arrivals(phases, "constant")])
    assert expected_arrivals(phases) == pytest.approx(500)
    assert len(times) == 500
    assert (times < 5).sum() == pytest.approx(125, abs=1)  # a quarter of the mass in the 1st half
    assert segments(phases)[0].invert(500) == pytest.approx(10)


def test_streams_partition_the_constant_schedule():
    phases = [ph("s", 10, 30)]
    whole = [t for t, _ in arrivals(phases, "constant")]
    parts = [t for k in range(3) for t, _ in arrivals(phases, "constant", stream=k, streams=3)]
    assert sorted(parts) == pytest.approx(whole)


def test_poisson_streams_superpose_to_the_full_rate():
    phases = [ph("s", 200, 30)]
    n = sum(
        1
        for k in range(4)
        for _ in arrivals(phases, "poisson", stream=k, streams=4, rng=random.Random(k))
    )
    assert abs(n - 6000) < 4 * np.sqrt(6000)


def test_unknown_model_and_bad_stream_are_rejected():
    with pytest.raises(ValueError, match="unknown arrival model"):
        next(arrivals([ph("s", 1, 1)], "bursty"))
    with pytest.raises(ValueError, match="out of range"):
        next(arrivals([ph("s", 1, 1)], "constant", stream=2, streams=2))
