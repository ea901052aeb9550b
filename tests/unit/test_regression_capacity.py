"""The capacity search (ramp, bisection, interval), the over-saturation watch and the probe's
SLO decisions, on synthetic probes and rows (no processes)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from synthetic_runs import SCENARIO, probe_of, run_calls

from loadgate.regression import figures as F
from loadgate.regression import stats
from loadgate.regression.capacity import estimate, search
from loadgate.regression.probe import (
    MEASURE,
    WARMUP,
    Attempt,
    Watch,
    decide,
    judge,
    probe_scenario,
)
from loadgate.regression.result import Probe
from loadgate.schema import SAMPLE_COLUMNS
from loadgate.traffic.scenario import CapacitySearch, Scenario

CFG = CapacitySearch(start=20, max=400, tolerance=0.1)
CALLS = 400  # per synthetic probe


def share_at(load: float, capacity: float) -> float:
    """A share over the bound that crosses the 1 % allowed at `capacity`, steeply (a queue)."""
    return min(1.0, 0.01 * (load / capacity) ** 8)


def fake_stack(capacity: float, per_burst: int = 1, lucky: tuple[float, ...] = ()):
    """measure(load) of a stack whose share of calls over the SLO bound is share_at(load); the
    misses come `per_burst` at a time; at a `lucky` load the probe saw no miss at all."""
    loads: list[float] = []

    def measure(load: float) -> Probe:
        loads.append(load)
        over = 0 if load in lucky else round(share_at(load, capacity) * CALLS)
        bursts = -(-over // per_burst)
        return probe_of(load, over, CALLS, bursts, 0.01, 99)

    return measure, loads


def test_ramp_doubles_then_bisects_to_the_tolerance():
    measure, loads = fake_stack(47.0)
    found = search(measure, CFG)
    assert loads[:3] == [20, 40, 80]
    assert found.complete and found.note == ""
    steer = sorted(loads[-2:])
    assert steer[1] / steer[0] <= 1.1  # the bisection narrowed to the tolerance
    # the fitted curve crosses 1 % within a tolerance of the true capacity, inside its interval
    assert 47 * 0.9 <= found.capacity <= 47 * 1.1
    assert found.lo <= found.capacity <= found.hi and found.lo <= 47 <= found.hi * 1.02


def test_misses_in_bursts_widen_the_interval():
    narrow = search(fake_stack(47.0)[0], CFG)
    wide = search(fake_stack(47.0, per_burst=8)[0], CFG)
    assert narrow.capacity == wide.capacity  # the same shares: the same fit
    # 400 calls whose misses come 8 at a time are 50 trials, not 400
    assert wide.lo < narrow.lo - 3


def test_a_lucky_probe_above_the_knee_does_not_set_the_capacity():
    # 60 calls/s saw no miss by luck (no pod filled up in its 15 s): the bisection climbs past
    # it, but the curve through every probe pools it with its neighbours
    measure, loads = fake_stack(47.0, lucky=(60.0,))
    found = search(measure, CFG)
    assert 60.0 in loads and max(x for x in loads if x < 62) == 60.0
    assert found.capacity < 55 and found.lo <= 47


def test_a_failing_start_halves_down_and_none_passing_is_said():
    measure, loads = fake_stack(6.0)
    found = search(measure, CFG)
    assert loads[:3] == [20, 10, 5] and 5 <= found.capacity <= 7
    measure, loads = fake_stack(0.1)
    found = search(measure, CFG)
    assert found.capacity is None and found.lo is None
    assert "no load passed (down to 1.25)" in found.note


def test_reaching_the_max_without_a_failure_is_said():
    measure, loads = fake_stack(1e6)
    found = search(measure, CFG)
    assert loads[-1] == 400 and found.hi is None and found.capacity == 400
    assert "capacity >= max (400)" in found.note


def test_an_invalid_probe_ends_the_search_incomplete():
    measure, _ = fake_stack(47.0)

    def flaky(load: float) -> Probe:
        if load == 80:
            return Probe.invalid(load, "generator fell behind 3 times")
        return measure(load)

    found = search(flaky, CFG)
    assert not found.complete and "probe at 80 was invalid: generator fell behind" in found.note
    assert found.capacity == 40 and found.hi is None


def test_closed_loop_search_is_over_whole_users():
    measure, loads = fake_stack(13.0)
    found = search(measure, CapacitySearch(start=4, max=64), integer=True)
    assert all(x == int(x) for x in loads)
    assert found.capacity in (12, 13) and found.lo <= 13 <= found.hi
    assert all(x == int(x) for x in (found.capacity, found.lo, found.hi) if x is not None)


def test_a_backlogged_probe_counts_as_every_call_missing():
    measure, _ = fake_stack(47.0)
    probes = [measure(x) for x in (20, 40)]
    # stopped with its calls piling up: the few rows it has all made their SLO
    stopped = measure(80).model_copy(update={"verdict": "saturated", "backlog": True})
    stopped = stopped.model_copy(
        update={"checks": [stopped.checks[0].model_copy(update={"counted": 3, "over": 0})]}
    )
    capacity, lo, hi = estimate([*probes, stopped])
    assert 40 < capacity < 80 and hi is not None and hi <= 80
    # stopped for its SLO budget: counted as measured
    budget = measure(60).model_copy(update={"verdict": "saturated"})
    capacity, lo, hi = estimate([*probes, budget])
    assert capacity == estimate([*probes, measure(60)])[0]


def test_shares_decide_pass_fail_and_undecided():
    assert decide(0, 400, 0, 0.01) == "pass"  # 0 of 400: below 1 % at 95 %
    assert decide(0, 100, 0, 0.01) == "undecided"  # 0 of 100 cannot bound a p99
    assert decide(0, 100, 0, 0.05) == "pass"  # ... but can a p95
    assert decide(40, 400, 40, 0.01) == "fail"
    assert decide(20, 400, 1, 0.01) == "undecided"  # 20 misses in one burst: one event


def test_isotonic_fit_and_its_crossing():
    xs, ys = stats.isotonic(np.array([1.0, 2, 3, 4]), np.array([0.0, 0.2, 0.1, 0.5]), np.ones(4))
    assert list(xs) == [1.0, 2.5, 4.0] and list(ys) == pytest.approx([0.0, 0.15, 0.5])
    assert stats.crossing(xs, ys, 0.075) == pytest.approx(1.75)
    assert stats.crossing(xs, ys, 0.9) == math.inf and stats.crossing(xs, ys + 1, 0.5) == -math.inf
    assert stats.episodes(np.array([0, 2, 1, 0, 0, 3, 0, 1])) == 3


# -- the probe's scenario and its watch ------------------------------------------------------------


def scenario() -> Scenario:
    return Scenario.model_validate(SCENARIO)


def test_probe_scenario_is_warmup_and_measure_at_the_load_with_one_seed():
    sc = probe_scenario(scenario(), 33.0, CapacitySearch(warmup_s=4, measure_s=12), seed=5)
    assert [(p.name, p.duration_s, p.rate) for p in sc.phases] == [
        (WARMUP, 4, 33.0),
        (MEASURE, 12, 33.0),
    ]
    assert sc.generator.seed == 5 and sc.classes == scenario().classes
    closed = Scenario.model_validate(
        {**SCENARIO, "arrival": "closed", "phases": [{"name": "s", "duration_s": 5, "users": 2}]}
    )
    users = probe_scenario(closed, 6.0, CapacitySearch(warmup_s=0), seed=5)
    assert [(p.name, p.users) for p in users.phases] == [(MEASURE, 6)]


def rows(
    n: int, t0: float, rate: float, latency: float, phase: str = MEASURE, cls: str = "cv"
) -> pd.DataFrame:
    t = t0 + np.arange(n) / rate
    return pd.DataFrame(
        {
            "intended": t,
            "start": t,
            "first_byte": t + latency,
            "end": t + latency,
            "cls": cls,
            "model": cls,
            "status": "OK",
            "served_by": "p",
            "tokens": 0,
            "bytes": 1,
            "phase": phase,
            "worker": "w",
            "request_id": "",
            "error": "",
        }
    )[SAMPLE_COLUMNS]


def test_watch_stops_a_probe_whose_slo_budget_is_spent():
    sc = probe_scenario(scenario(), 20.0, CapacitySearch(warmup_s=5, measure_s=15), seed=1)
    watch = Watch(sc, 20.0, CapacitySearch(warmup_s=5, measure_s=15))
    t0 = 1000.0
    fine = rows(60, t0 + 5, 10.0, latency=0.01)  # cv well within its 80 ms bound
    assert watch.check(fine, t0 + 12, t0) is None
    slow = rows(60, t0 + 5, 10.0, latency=0.5)  # every cv call over its bound, for 6 s
    reason = watch.check(slow, t0 + 12, t0)
    assert reason is not None and reason.startswith("cv: 60 calls over latency_p99_ms 80")
    # the same 60 misses within 3 s (one pod busy for a moment): one event, not a spent budget
    burst = rows(60, t0 + 5, 20.0, latency=0.5)
    assert Watch(sc, 20.0, watch.search).check(burst, t0 + 12, t0) is None


def test_watch_sees_a_growing_backlog_but_not_late_rows():
    cfg = CapacitySearch(warmup_s=5, measure_s=30)
    sc = probe_scenario(scenario(), 20.0, cfg, seed=1)
    t0 = 1000.0
    steady, stalled = Watch(sc, 20.0, cfg), Watch(sc, 20.0, cfg)
    late, stuck = Watch(sc, 20.0, cfg), Watch(sc, 20.0, cfg)
    all_rows = rows(20 * 40, t0, 20.0, latency=0.02)
    hits = {"steady": None, "stalled": None, "late": None, "stuck": None}
    for now in np.arange(t0 + 6, t0 + 30, 1.0):
        # steady: every call ends at once, but its row shows up only 3 s later (a busy machine)
        seen = all_rows[all_rows["end"] <= now - 3.0]
        hits["steady"] = hits["steady"] or steady.check(seen, now, t0)
        # late: the rows come 9 s after their calls ended, beyond ROW_DELAY_S (seen on the twin:
        # a probe at a sustainable rate was called saturated with ~17 calls really in flight)
        shipped = all_rows[all_rows["end"] <= now - 9.0]
        hits["late"] = hits["late"] or late.check(shipped, now, t0)
        # stuck shipping: nothing new arrives for 10 s, then everything at once
        batch = all_rows[all_rows["end"] <= (now if now > t0 + 20 else min(now, t0 + 10))]
        hits["stuck"] = hits["stuck"] or stuck.check(batch, now, t0)
        # stalled: from t0 + 10 only one call in three completes
        done = all_rows[
            (all_rows["end"] <= now)
            & ((all_rows["intended"] < t0 + 10) | (np.arange(len(all_rows)) % 3 == 0))
        ]
        hits["stalled"] = hits["stalled"] or stalled.check(done, now, t0)
    assert hits["steady"] is None and hits["late"] is None and hits["stuck"] is None
    assert hits["stalled"] is not None and hits["stalled"].startswith("backlog growing")


def test_watch_sees_no_backlog_while_the_last_calls_drain():
    # Seen on the twin at time scale 0.2: 2000-token streams outlast the schedule by ~10 s, and
    # the arrivals "expected by now" kept growing after the last send (a sustainable probe at
    # 22.5 calls/s was called saturated with ~15 calls really in flight).
    cfg = CapacitySearch(warmup_s=5, measure_s=15)
    sc = probe_scenario(scenario(), 20.0, cfg, seed=1)
    t0, end = 1000.0, 1000.0 + sc.duration_s
    short = rows(int(20 * sc.duration_s) - 20, t0, 20.0, latency=0.05)
    long = rows(20, end - 10.0, 2.0, latency=10.0)  # their ends keep coming after the last send
    sent = pd.concat([short, long], ignore_index=True)
    watch = Watch(sc, 20.0, cfg)
    for now in np.arange(t0 + 6, end + 15, 1.0):  # checks go on while calls drain
        assert watch._backlog(sent[sent["end"] <= now - 1.0], now, t0) is None, now


# -- judging a probe ----------------------------------------------------------------------------------


def attempt(tmp_path, calls: pd.DataFrame, window: F.Window, saturated: str = "") -> Attempt:
    return Attempt(tmp_path / "p", calls, window, True, "", saturated, saturated.startswith("b"))


def llm_and_cv(rng, ttft_scale: float) -> tuple[pd.DataFrame, F.Window]:
    llm, window = run_calls(rng, seconds=15, rate=30, scale=ttft_scale)
    cv, _ = run_calls(rng, seconds=15, rate=30)
    cv = cv.assign(**{F.CLS: "cv", F.TTFT: np.nan, F.ITL: np.nan, F.LATENCY: cv[F.TTFT] / 4})
    return pd.concat([llm, cv], ignore_index=True), window


def test_judge_decides_pass_fail_and_undecided_by_the_intervals(tmp_path):
    rng = np.random.default_rng(30)
    sc = scenario()  # llm ttft p99 <= 200 ms, itl p99 <= 10 ms; cv latency p99 <= 80 ms
    calls, window = llm_and_cv(rng, 1.0)  # ttft p99 ~ 80 ms
    p = judge(20, [attempt(tmp_path, calls, window)], sc, tmp_path, seed=1)
    assert p.verdict == "pass" and p.passed
    calls, window = llm_and_cv(rng, 6.0)  # ttft p99 ~ 480 ms
    p = judge(20, [attempt(tmp_path, calls, window)], sc, tmp_path, seed=1)
    assert p.verdict == "fail" and "llm ttft_p99_ms" in p.reason
    near = next(
        s
        for s in (2.3, 2.4, 2.5, 2.6)
        if judge(
            20, [attempt(tmp_path, *llm_and_cv(np.random.default_rng(31), s))], sc, tmp_path, 1
        ).verdict
        == "undecided"
    )
    assert 2.3 <= near <= 2.6  # p99 right at the bound: the interval straddles it
    assert p.classes["llm"].ttft_p99_ms == pytest.approx(p.checks[0].value)


def test_judge_pools_attempts_and_a_stopped_probe_is_saturated(tmp_path):
    rng = np.random.default_rng(32)
    sc = scenario()
    a1, a2 = llm_and_cv(rng, 1.0), llm_and_cv(rng, 1.0)
    p = judge(20, [attempt(tmp_path, *a1), attempt(tmp_path, *a2)], sc, tmp_path, seed=1)
    assert p.attempts == 2 and p.measured_s == 30.0
    assert p.classes["llm"].calls == len(a1[0][a1[0][F.CLS] == "llm"]) + len(
        a2[0][a2[0][F.CLS] == "llm"]
    )
    p = judge(20, [attempt(tmp_path, *a1, saturated="backlog growing")], sc, tmp_path, seed=1)
    assert p.verdict == "saturated" and not p.passed and p.backlog


def test_a_closed_loop_generator_that_stalled_is_not_trusted():
    from loadgate.traffic.summary import closed_loop_stall as stalled
    from loadgate.traffic.summary import longest_idle_s

    closed = Scenario.model_validate(
        {**SCENARIO, "arrival": "closed", "phases": [{"name": "s", "duration_s": 10, "users": 2}]}
    )
    busy = rows(100, 1000.0, 10.0, latency=0.15)  # always a call in flight
    assert longest_idle_s(busy) == 0.0 and stalled(busy, closed) == ""
    gap = pd.concat(
        [
            busy.iloc[:40],
            busy.iloc[40:].assign(
                **{c: busy.iloc[40:][c] + 5 for c in ("intended", "start", "first_byte", "end")}
            ),
        ]
    )
    assert longest_idle_s(gap) == pytest.approx(4.95)
    assert stalled(gap, closed).startswith("generator stalled: no call in flight for 5.0 s")
    assert stalled(gap, scenario()) == ""  # open loop: gaps between arrivals are the schedule's


def test_every_slo_key_limits_a_figure():
    from loadgate.traffic.scenario import Slo

    assert set(F.SLO_FIGURES) == set(Slo.model_fields)
    assert all(figure in F.FIGURES for figure, _ in F.SLO_FIGURES.values())


def test_a_percentile_a_probe_cannot_bound_is_warned_about():
    from loadgate.regression.probe import unboundable

    assert stats.calls_to_bound(0.01) == 250 and stats.calls_to_bound(0.05) == 49
    data = scenario().model_dump()
    llm = next(c for c in data["classes"] if c["name"] == "llm")
    cfg = CapacitySearch(measure_s=15)
    share = llm["weight"] / sum(c["weight"] for c in data["classes"])
    load = 40 / (share * 15)  # 40 calls of llm per probe
    llm["slo"] = {"ttft_p99_ms": 200}
    (line,) = [x for x in unboundable(Scenario.model_validate(data), load, cfg) if "llm" in x]
    assert line.startswith("llm ttft_p99_ms: ~40 calls per probe") and "from ~250 on" in line
    llm["slo"] = {"ttft_p95_ms": 200}
    assert not [x for x in unboundable(Scenario.model_validate(data), load, cfg) if "llm" in x]


def test_refine_probes_go_where_the_fit_is_least_sure():
    measure, loads = fake_stack(47.0, per_burst=4)
    plain = search(measure, CFG)
    n = len(loads)
    measure, loads = fake_stack(47.0, per_burst=4)
    refined = search(measure, CFG.model_copy(update={"refine": 3}))
    extra = loads[n:]
    assert loads[:n] == [p.load for p in plain.probes] and 1 <= len(extra) <= 3
    assert all(plain.lo <= x <= plain.hi for x in extra)  # inside the interval it had
    assert refined.hi - refined.lo <= plain.hi - plain.lo


def test_no_refine_probe_runs_past_the_budget():
    measure, loads = fake_stack(47.0)
    now = [0.0]

    def timed(load: float) -> Probe:
        now[0] += 30.0  # every probe takes 30 s
        return measure(load)

    cfg = CFG.model_copy(update={"refine": 5, "budget_s": 250.0})
    found = search(timed, cfg, clock=lambda: now[0])
    assert len(loads) == 8 and now[0] <= 250  # 7 to bisect, 1 refine: a 9th would end at 270
    assert found.complete
    # an interval open above is probed one tolerance step beyond it first
    measure, loads = fake_stack(1e6)
    from loadgate.regression.capacity import _refine_at

    probes = [measure(x) for x in (20.0, 40.0)]
    assert _refine_at(probes, CFG, integer=False) == 44.0
