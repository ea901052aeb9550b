"""Gate: a pod whose queue exceeds the readiness limit (50) leaves rotation — the proxy stops
sending it calls within one health-check interval — and returns after draining.

Through the proxy the breaker caps a pod at 50 in flight, so one pod is flooded DIRECTLY at its
gRPC port (a bounded burst, as chaos' flood_queue does) while steady traffic flows through the
proxy; the judge then checks where the proxy sent that traffic.
"""

import time

import pytest

from loadgate import judge


def flood_one_pod(spec):
    """`during` action: after `spec.after_s`, a bounded burst of long calls at the first pod."""

    def during(platform, load_start):
        from loadgate.chaos.flood import Flood

        pod = sorted(platform.pods(), key=lambda p: p.name)[0]
        time.sleep(max(0.0, load_start + spec.after_s - time.time()))
        flood = Flood(
            pod.address,
            spec.requests,
            spec.duration_s,
            model=spec.model,
            max_tokens=spec.max_tokens,
            pod=pod.name,
        )
        return flood.start().wait().result()

    return during


@pytest.mark.gate("readiness")
@pytest.mark.timeout(600)
def test_readiness_dropout(run_gate, gate_session):
    params = gate_session.params("readiness")
    run = run_gate(during=flood_one_pod(params.flood))
    # the deployment's READY_MAX_QUEUE; None when the pods run without the rule (a broken twin)
    limit = run.facts.ready_max_queue
    r = judge.readiness(
        run.samples,
        run.timeline,
        probe_interval=params.probe_grace_s,
        queue_limit=limit if limit is not None else float("inf"),
        return_grace=params.return_grace_s,
    )
    flooded = (run.during_result or {}).get("pod")
    run.check("drops", r.drops, f"{flooded} flooded")
    run.check(
        "overloads_not_dropped",
        r.overloads_not_dropped if limit is not None else None,
        f"limit {limit}, max queue {r.max_queue:g}" if limit else "the pods have no queue limit",
    )
    run.check(
        "calls_to_not_ready", r.calls_to_not_ready, f"after a {params.probe_grace_s:g} s grace"
    )
    run.check("returned", r.returned)
    run.note("max_queue", r.max_queue)
    run.note("not_ready_s", r.not_ready_s)
    run.note("calls_in_grace", r.calls_in_grace)
    run.assert_passed()
