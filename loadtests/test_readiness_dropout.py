"""Gate: a pod whose queue exceeds the readiness limit (50) leaves rotation — the proxy stops
sending it calls within one health-check interval — and returns after draining.

Through the proxy the breaker caps a pod at 50 in flight, so one pod is flooded DIRECTLY at its
gRPC port (a bounded burst, as chaos' flood_queue does) while steady traffic flows through the
proxy; the judge then checks where the proxy sent that traffic, from Envoy's own record of it,
and how fast Envoy and the proxy reacted to the pod turning not ready.
"""

import time

import pytest

from loadgate import judge
from loadgate.judge.readiness import reaction


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

    def judged(samples):
        return judge.readiness(
            samples,
            run.timeline,
            probe_interval=params.probe_grace_s,
            queue_limit=limit if limit is not None else float("inf"),
            # a readiness change is recorded up to `observation_s` after it happened
            return_grace=params.return_grace_s + run.observation_s,
        )

    stack, client = judged(run.stack_samples), judged(run.samples)
    flooded = (run.during_result or {}).get("pod")
    run.check("drops", f"{flooded} flooded", stack=stack.drops)
    run.check(
        "overloads_not_dropped",
        f"limit {limit}, max queue {stack.max_queue:g}" if limit else "the pods have no limit",
        stack=stack.overloads_not_dropped if limit is not None else None,
    )
    run.check(
        "calls_to_not_ready",
        f"after a {params.probe_grace_s:g} s grace",
        stack=stack.calls_to_not_ready,
        client=client.calls_to_not_ready,
    )
    run.check("returned", stack=stack.returned)
    react = reaction(run.stack_samples, run.timeline)
    run.note("reaction.envoy_unhealthy_s", react.envoy_unhealthy_s)
    run.note("reaction.last_call_s", react.last_call_s)
    run.note("max_queue", stack.max_queue)
    run.note("not_ready_s", stack.not_ready_s)
    run.note("calls_in_grace", stack.calls_in_grace)
    run.assert_passed()
