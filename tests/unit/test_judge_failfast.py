import numpy as np
import pandas as pd
import pytest

from loadgate.judge import check, failfast, recovery_time


def calls(t, status, latency_s, lag_s=0.0, cls="llm-short", phase="flood"):
    t = np.asarray(t, dtype=float)
    return pd.DataFrame(
        {
            "intended": t,
            "start": t + lag_s,
            "end": t + lag_s + latency_s,
            "status": status,
            "cls": cls,
            "phase": phase,
        }
    )


def flood_run(reject_latency_s, deadline_exceeded=0, recover_at=5.0):
    steady = calls(np.arange(0, 10, 0.05), "OK", 0.1, phase="steady")
    t = np.arange(10, 20, 0.01)
    rejected = calls(t[::2], "UNAVAILABLE", reject_latency_s)
    accepted = calls(t[1::2], "OK", 0.4)
    accepted.loc[accepted.index[:deadline_exceeded], "status"] = "DEADLINE_EXCEEDED"
    # after the flood: slow for `recover_at` seconds (queues draining), then within the SLO
    after = np.arange(20, 40, 0.05)
    cool = calls(after, "OK", np.where(after < 20 + recover_at, 3.0, 0.1), phase="cooldown")
    return pd.concat([steady, rejected, accepted, cool], ignore_index=True)


def test_fast_rejections_pass_and_figures_are_right():
    r = failfast(flood_run(0.003), slo_ms=500, recovery_window=1.0)
    assert r.rejected_share == pytest.approx(0.5, abs=0.01)
    assert r.reject_p99_ms == pytest.approx(3.0, abs=0.1)
    assert r.deadline_exceeded == 0
    assert r.accepted_p99_ms == pytest.approx(400, abs=1)
    assert r.recovery_s is not None and 5.0 <= r.recovery_s <= 6.5
    assert check("fail_fast", "reject_p99_ms", r.reject_p99_ms, "<=", 50, "ms").passed


def test_rejections_that_take_seconds_fail_the_gate():
    r = failfast(flood_run(2.5), slo_ms=500)
    v = check("fail_fast", "reject_p99_ms", r.reject_p99_ms, "<=", 50, "ms")
    assert not v.passed and "2500 ms" in v.message


def test_latency_from_intended_shows_generator_lag_the_stack_time_does_not():
    s = flood_run(0.003)
    s.loc[s["phase"] == "flood", "start"] += 0.2  # generator 200 ms late
    s.loc[s["phase"] == "flood", "end"] += 0.2
    r = failfast(s)
    assert r.reject_p99_ms == pytest.approx(3.0, abs=0.1)
    assert r.reject_p99_from_intended_ms == pytest.approx(203.0, abs=0.5)


def test_deadline_exceeded_is_counted():
    r = failfast(flood_run(0.003, deadline_exceeded=7))
    assert r.deadline_exceeded == 7
    assert not check("fail_fast", "deadline_exceeded", r.deadline_exceeded, "==", 0).passed


def test_never_recovering_gives_none_and_fails():
    s = flood_run(0.003, recover_at=100.0)
    r = failfast(s, slo_ms=500)
    assert r.recovery_s is None
    assert not check("fail_fast", "recovery_s", r.recovery_s, "<=", 30, "s").passed


def test_errors_after_the_flood_are_not_a_recovery():
    t = np.arange(0, 10, 0.05)
    s = calls(t, np.where(t < 4, "UNAVAILABLE", "OK"), 0.01, phase="cooldown")
    assert recovery_time(s, after=0.0, slo_ms=100, window=1.0) == pytest.approx(5.0)


def test_explicit_window_and_missing_phase():
    s = flood_run(0.003)
    assert failfast(s, window=(10, 15)).sent == pytest.approx(500, abs=2)
    with pytest.raises(ValueError, match="no samples in phase"):
        failfast(s, phase="storm")


def test_admitted_inflight_peak_is_exact_and_ignores_rejections():
    # 10 admitted calls of 1 s started 0.1 s apart overlap 10 deep; 50 fast rejections add nothing
    admitted = calls(10 + 0.1 * np.arange(10), "OK", 1.0)
    rejected = calls(10 + 0.01 * np.arange(50), "UNAVAILABLE", 0.002)
    before = calls([9.0], "OK", 5.0, phase="steady")  # still running during the flood: counts
    r = failfast(pd.concat([admitted, rejected, before], ignore_index=True), slo_ms=5000)
    assert r.admitted_inflight_peak == 11


def test_unbounded_admission_shows_a_higher_peak_than_a_breaker():
    t = np.arange(10, 20, 0.01)
    capped = pd.concat(
        [calls(t[i::100], "OK", 0.99) for i in range(0, 100, 2)]  # ~50 in flight
        + [calls(t[1::2], "UNAVAILABLE", 0.002)],
        ignore_index=True,
    )
    unbounded = calls(t, "OK", 0.99)  # every call admitted: ~100 in flight
    peak_capped = failfast(capped, slo_ms=5000).admitted_inflight_peak
    peak_unbounded = failfast(unbounded, slo_ms=5000).admitted_inflight_peak
    assert peak_capped <= 51 < 99 <= peak_unbounded
