"""The capacity search (ramp, bisection, interval), the over-saturation watch and the probe's
SLO decisions, on synthetic probes and rows (no processes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from synthetic_runs import SCENARIO, run_calls

from loadgate.regression import figures as F
from loadgate.regression.capacity import search
from loadgate.regression.probe import MEASURE, WARMUP, Attempt, Watch, judge, probe_scenario
from loadgate.regression.result import Probe, SloCheck
from loadgate.schema import SAMPLE_COLUMNS
from loadgate.traffic.scenario import CapacitySearch, Scenario

CFG = CapacitySearch(start=20, max=400, tolerance=0.1)


def fake_stack(capacity: float, margin: float = 0.0):
    """measure(load) of a stack that meets its SLO below `capacity`: the SLO figure is
    load / capacity of its bound; within `margin` of it a probe is undecided."""
    loads: list[float] = []

    def measure(load: float) -> Probe:
        loads.append(load)
        ratio = load / capacity
        verdict = "undecided" if abs(ratio - 1) <= margin else "pass" if ratio <= 1 else "fail"
        check = SloCheck(
            cls="llm",
            slo="ttft_p99_ms",
            figure="ttft_p99_ms",
            bound=100.0,
            value=100.0 * ratio,
            lo=100.0 * ratio * 0.9,
            hi=100.0 * ratio * 1.1,
            decision=verdict,
        )
        return Probe(
            load=load, attempts=1, verdict=verdict, run_dirs=[], measured_s=15.0, checks=[check]
        )

    return measure, loads


def test_ramp_doubles_then_bisects_to_the_tolerance():
    measure, loads = fake_stack(47.0)
    found = search(measure, CFG)
    assert loads[:3] == [20, 40, 80]
    assert found.complete and found.note == ""
    assert found.lo <= 47.0 < found.hi and found.hi / found.lo <= 1.1
    assert found.capacity == found.lo  # every probe decided: capacity is the highest pass


def test_undecided_probes_steer_the_bisection_but_widen_the_interval():
    measure, loads = fake_stack(47.0, margin=0.12)
    found = search(measure, CFG)
    assert found.complete
    # the bracket narrows on point verdicts; the interval keeps to decided probes
    assert found.lo <= 0.88 * 47 + 1e-9 and found.hi >= 1.12 * 47 - 1e-9
    assert found.lo <= found.capacity <= found.hi and 40 <= found.capacity <= 52
    # ... and the search steps out (one tolerance at a time) until both ends are decided
    assert found.hi <= 47 * 1.12 * 1.1**2 and found.lo >= 47 * 0.88 / 1.1**2


def test_an_undecided_end_is_closed_by_probing_one_step_further():
    measure, loads = fake_stack(12.0, margin=0.05)  # 12 users: right on the bound, undecided
    found = search(measure, CapacitySearch(start=12, max=64), integer=True)
    assert loads[0] == 12 and 13 in loads and found.hi == 13
    assert found.lo == 11 and found.capacity == 12


def test_a_failing_start_halves_down_and_none_passing_is_said():
    measure, loads = fake_stack(6.0)
    found = search(measure, CFG)
    assert loads[:3] == [20, 10, 5] and found.lo <= 6 < found.hi
    measure, loads = fake_stack(0.1)
    found = search(measure, CFG)
    assert found.capacity is None and "no load passed (down to 1.25)" in found.note


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
    assert found.capacity == 13 and found.hi == 14


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
    fine = rows(40, t0 + 5, 10.0, latency=0.01)  # cv well within its 80 ms bound
    assert watch.check(fine, t0 + 10, t0) is None
    slow = rows(40, t0 + 5, 10.0, latency=0.5)  # every cv call over its bound
    reason = watch.check(slow, t0 + 10, t0)
    assert reason is not None and reason.startswith("cv: 40 calls over latency_p99_ms 80")


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
    return Attempt(tmp_path / "p", calls, window, True, "", saturated)


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
    assert p.verdict == "pass" and p.passed and p.decided
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
    assert p.verdict == "saturated" and not p.passed and p.decided


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
