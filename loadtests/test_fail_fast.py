"""Gate: under a flood the proxy fails fast — the excess is answered at once with UNAVAILABLE
(the max_requests circuit breaker) instead of queueing into deadlines — and the stack recovers."""

import pytest

from loadgate import judge


@pytest.mark.gate("fail_fast")
@pytest.mark.timeout(600)
def test_fail_fast(run_gate):
    run = run_gate()
    p = run.params
    f = judge.failfast(
        run.samples,
        phase=run.window_phase or "flood",
        slo_ms=p.slo_ms,
        slo_class=p.slo_class,
        recovery_window=p.recovery_window_s,
    )
    run.check("rejected_share", f.rejected_share, f"of {f.sent} flood calls")
    run.check("reject_p99_ms", f.reject_p99_ms, "end - start")
    run.check("deadline_exceeded", f.deadline_exceeded)
    run.check("accepted_p99_ms", f.accepted_p99_ms)
    run.check("admitted_inflight_peak", f.admitted_inflight_peak)
    run.check("recovery_s", f.recovery_s, f"{p.slo_class} p99 <= {p.slo_ms:.0f} ms")
    run.note("reject_p50_ms", f.reject_p50_ms)
    run.assert_passed()
