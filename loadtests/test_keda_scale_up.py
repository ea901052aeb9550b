"""Gate: KEDA scales the model Deployment up on in-flight requests — demand above the
ScaledObject's target per pod brings ready capacity within a bound, never above maxReplicaCount."""

import pytest

from loadgate import judge


@pytest.mark.gate("scale_up")
@pytest.mark.timeout(600)
def test_keda_scale_up(run_gate):
    run = run_gate()
    target = run.facts.autoscaler_target
    assert target is not None, "the manifests have no ScaledObject for the model Deployment"
    frame = judge.replicas_frame(
        run.samples, run.timeline, bucket=run.params.bucket_s, target=target
    )
    s = judge.scaling(frame, max_replicas=run.facts.max_replicas)
    run.check("peak_demand", s.peak_demand, f"target {target:g} in flight per pod")
    run.check("max_ready", s.max_ready)
    run.check("time_to_capacity_s", s.time_to_capacity_s)
    run.check("above_max", float(s.above_max), f"maxReplicaCount {run.facts.max_replicas}")
    run.note("replica_seconds", s.replica_seconds)
    run.note("time_to_first_scale_s", s.time_to_first_scale_s)
    run.assert_passed()
