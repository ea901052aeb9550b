"""Gate: under a flood the proxy fails fast — the excess is answered at once with UNAVAILABLE
(the max_requests circuit breaker) instead of queueing into deadlines — and the stack recovers.

The breaker's figures come from Envoy's own record of each call (access log: when it arrived,
when it was answered, `UO` for overflow); the client's view is kept beside them. Recovery is the
latency a user sees, so it is the client's."""

import pytest

from loadgate import judge


@pytest.mark.gate("fail_fast")
@pytest.mark.timeout(600)
def test_fail_fast(run_gate):
    run = run_gate()
    p = run.params
    kw = dict(
        phase=run.window_phase or "flood",
        slo_ms=p.slo_ms,
        slo_class=p.slo_class,
        recovery_window=p.recovery_window_s,
    )
    stack, client = judge.failfast(run.stack_samples, **kw), judge.failfast(run.samples, **kw)
    run.check(
        "rejected_share",
        f"of {stack.sent} flood calls",
        stack=stack.rejected_share,
        client=client.rejected_share,
    )
    run.check("reject_p99_ms", stack=stack.reject_p99_ms, client=client.reject_p99_ms)
    run.check("deadline_exceeded", stack=stack.deadline_exceeded, client=client.deadline_exceeded)
    run.check("accepted_p99_ms", stack=stack.accepted_p99_ms, client=client.accepted_p99_ms)
    run.check(
        "admitted_inflight_peak",
        f"breaker max_requests {run.facts.max_requests or 'none'}",
        stack=stack.admitted_inflight_peak,
        client=client.admitted_inflight_peak,
    )
    run.check(
        "recovery_s",
        f"{p.slo_class} p99 <= {p.slo_ms:.0f} ms",
        stack=stack.recovery_s,
        client=client.recovery_s,
    )
    run.note("reject_p50_ms", stack.reject_p50_ms)
    run.assert_passed()
