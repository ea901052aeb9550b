"""The capacity search against a simulated bursty tail: how often its 95 % interval holds the
true capacity, and how often two searches' intervals overlap (issue 15's "the same command
twice"). The stack: misses come only in bursts (a pod full of long streams), Poisson in time
at a rate growing as load^6; during a burst of D seconds a share F of the class's calls miss.
The true capacity is where the long-run share, rate x D x F, meets the share allowed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from synthetic_runs import probe_of

from loadgate.regression import stats
from loadgate.regression.capacity import search
from loadgate.regression.result import Probe
from loadgate.traffic.scenario import CapacitySearch

ALLOWED = 0.05  # a p95
CLASS_SHARE = 0.4  # of the calls per second of load
MEASURE_S = 15
CFG = CapacitySearch(start=10, max=400, tolerance=0.1, measure_s=MEASURE_S, refine=3)


def bursts_per_s(load: float) -> float:
    return 0.01 * (load / 20.0) ** 6


def true_capacity(burst_s: int, miss: float) -> float:
    return 20.0 * (ALLOWED / (0.01 * burst_s * miss)) ** (1 / 6)


def bursty_stack(rng: np.random.Generator, burst_s: int, miss: float):
    def measure(load: float) -> Probe:
        active = np.zeros(MEASURE_S, bool)
        t = -float(burst_s)  # a burst that began before the window may still be on
        while (t := t + rng.exponential(1 / bursts_per_s(load))) < MEASURE_S:
            active[max(0, math.floor(t)) : max(0, math.floor(t) + burst_s)] = True
        calls = rng.poisson(load * CLASS_SHARE, MEASURE_S)
        missed = np.where(active, rng.binomial(calls, miss), 0)
        over, n = int(missed.sum()), int(calls.sum())
        return probe_of(load, over, n, stats.episodes(missed), ALLOWED, 95)

    return measure


def searches(trials: int, burst_s: int, miss: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(trials):
        f = search(bursty_stack(rng, burst_s, miss), CFG)
        out.append(
            (f.capacity, -math.inf if f.lo is None else f.lo, math.inf if f.hi is None else f.hi)
        )
    return np.array(out)


def overlap(r: np.ndarray) -> float:
    a, b = r[0::2], r[1::2]
    return float(np.mean(np.maximum(a[:, 1], b[:, 1]) <= np.minimum(a[:, 2], b[:, 2])))


@pytest.mark.timeout(120)
def test_bursts_of_a_few_misses_are_bounded_and_searches_agree():
    # ~5 misses a burst, as the twin's llm-short at 20 calls/s (BENCHMARKS.md "Capacity")
    truth = true_capacity(2, 0.3)
    r = searches(80, 2, 0.3, seed=1)
    held = np.mean((r[:, 1] <= truth) & (truth <= r[:, 2]))
    assert held >= 0.7  # measured 0.80-0.87 (calls as independent: 0.5)
    assert overlap(r) >= 0.9  # measured 0.97-1.0 (calls as independent: 0.68)
    assert abs(np.median(r[:, 0]) / truth - 1) < 0.1
    assert np.mean(np.isinf(r[:, 1])) < 0.5  # the lower end mostly bounded


@pytest.mark.timeout(120)
def test_long_heavy_bursts_leave_the_lower_end_open_instead_of_guessing():
    # ~20 misses a burst: a 15 s probe at the capacity sees none 2 times in 3, so clean probes
    # prove little; the search says so (lower end open) rather than bound it
    truth = true_capacity(4, 0.6)
    r = searches(60, 4, 0.6, seed=2)
    assert np.mean(np.isinf(r[:, 1])) > 0.7
    assert overlap(r) >= 0.9
    # the known limit: clean probes above the capacity (2 in 3 at it) pull the fit up
    assert 1.0 < np.median(r[:, 0]) / truth < 1.2
