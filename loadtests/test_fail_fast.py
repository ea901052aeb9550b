"""Gate: under a flood the proxy fails fast — the excess is answered at once with UNAVAILABLE
(the max_requests circuit breaker) instead of queueing into deadlines — and the stack recovers."""

import pytest

from loadgate import judge


@pytest.mark.gate("fail_fast")
@pytest.mark.timeout(600)
def test_fail_fast(run_gate):
    run = run_gate()
    f = judge.failfast(
        run.samples,
        phase=run.window_phase or "flood",
        slo_ms=run.threshold("slo_ms"),
        slo_class="llm-short",
    )
    run.check(
        "rejected_share",
        f.rejected_share,
        ">=",
        "rejected_share_min",
        what=f"of {f.sent} flood calls answered UNAVAILABLE",
    )
    run.check(
        "reject_p99_ms",
        f.reject_p99_ms,
        "<=",
        "reject_p99_ms_max",
        unit="ms",
        what="time to the rejection, end - start",
    )
    run.check(
        "deadline_exceeded",
        f.deadline_exceeded,
        "<=",
        "deadline_exceeded_max",
        what="flood calls that waited into their deadline",
    )
    run.check(
        "accepted_p99_ms",
        f.accepted_p99_ms,
        "<=",
        "accepted_p99_ms_max",
        unit="ms",
        what="admitted calls' latency",
    )
    run.check(
        "admitted_inflight_peak",
        f.admitted_inflight_peak,
        "<=",
        "inflight_peak_max",
        what="admitted calls in flight at once during the flood (the breaker's bound)",
    )
    run.check(
        "recovery_s",
        f.recovery_s,
        "<=",
        "recovery_s_max",
        unit="s",
        what=f"after the flood until short calls' p99 <= {run.threshold('slo_ms'):.0f} ms",
    )
    run.note("reject_p50_ms", f.reject_p50_ms)
    run.assert_passed()
