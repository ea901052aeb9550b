"""Gate: KEDA scales the model Deployment up on in-flight requests — demand above the
ScaledObject's target per pod brings ready capacity within a bound, never above maxReplicaCount.

Demand is the proxy's in-flight count from its own record of each call; capacity is the
platform's ready replicas."""

import pytest

from loadgate import judge


@pytest.mark.gate("scale_up")
@pytest.mark.timeout(600)
def test_keda_scale_up(run_gate):
    run = run_gate()
    # the ScaledObject's in-flight target per pod; none when the stack has no autoscaler, and
    # then demand and time to capacity cannot be measured (the gate fails: nothing scales)
    target = run.facts.autoscaler_target

    def scaling(samples):
        frame = judge.replicas_frame(
            samples, run.timeline, target or float("nan"), bucket=run.params.bucket_s
        )
        return judge.scaling(frame, max_replicas=run.facts.max_replicas)

    stack, client = scaling(run.stack_samples), scaling(run.samples)
    run.check(
        "peak_demand",
        f"target {target:g} in flight per pod" if target else "no ScaledObject",
        stack=stack.peak_demand,
        client=client.peak_demand,
    )
    run.check("max_ready", stack=stack.max_ready)
    run.check(
        "time_to_capacity_s", stack=stack.time_to_capacity_s, client=client.time_to_capacity_s
    )
    run.check(
        "above_max", f"maxReplicaCount {run.facts.max_replicas}", stack=float(stack.above_max)
    )
    run.note("replica_seconds", stack.replica_seconds)
    run.note("time_to_first_scale_s", stack.time_to_first_scale_s)
    run.assert_passed()
