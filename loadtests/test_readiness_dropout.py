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
def test_readiness_dropout(run_gate, gate_config):
    spec = gate_config.gates["readiness"].flood
    assert spec is not None, "loadgate.yaml: gates.readiness.flood is required"
    run = run_gate(during=flood_one_pod(spec))
    limit = (
        run.facts["ready_max_queue"] or 50
    )  # the manifests' limit, even when a twin turns it off
    # return_grace: readiness is recorded when the probe's answer is read (the twin's kubelet
    # checks every 0.1 s), so a call can start on a pod a moment before its recorded return.
    r = judge.readiness(
        run.samples,
        run.timeline,
        probe_interval=run.threshold("probe_grace_s"),
        queue_limit=limit,
        return_grace=0.25,
    )
    flooded = (run.during_result or {}).get("pod")
    run.check(
        "drops", r.drops, ">=", "drops_min", what=f"pods leaving rotation ({flooded} flooded)"
    )
    run.check(
        "overloads_not_dropped",
        r.overloads_not_dropped,
        "<=",
        "overloads_not_dropped_max",
        what=f"queue > {limit} episodes without not-ready (max queue {r.max_queue:g})",
    )
    run.check(
        "calls_to_not_ready",
        r.calls_to_not_ready,
        "<=",
        "calls_to_not_ready_max",
        what="calls the proxy started on a not-ready pod after the grace",
    )
    run.check(
        "returned", r.returned, ">=", "returned_min", what="pods back in rotation after draining"
    )
    run.note("max_queue", r.max_queue)
    run.note("not_ready_s", r.not_ready_s)
    run.note("calls_in_grace", r.calls_in_grace)
    run.assert_passed()
