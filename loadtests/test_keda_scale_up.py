"""Gate: KEDA scales the model Deployment up on in-flight requests — demand above 16 per pod
brings ready capacity within a bound, never above maxReplicaCount."""

import pytest

from loadgate import judge


@pytest.mark.gate("scale_up")
@pytest.mark.timeout(600)
def test_keda_scale_up(run_gate):
    run = run_gate()
    frame = judge.replicas_frame(run.samples, run.timeline, bucket=1.0, target=run.facts["target"])
    s = judge.scaling(frame, max_replicas=run.facts.get("max_replicas"))
    run.check(
        "peak_demand",
        s.peak_demand,
        ">=",
        "peak_demand_min",
        what=f"ceil(in-flight / {run.facts['target']:g}) at its highest",
    )
    run.check("max_ready", s.max_ready, ">=", "max_ready_min", what="ready replicas reached")
    run.check(
        "time_to_capacity_s",
        s.time_to_capacity_s,
        "<=",
        "time_to_capacity_s_max",
        unit="s",
        what="demand above ready capacity -> enough ready pods",
    )
    run.check(
        "above_max",
        float(s.above_max),
        "<=",
        "above_max_max",
        what=f"ready above maxReplicaCount {run.facts.get('max_replicas')}",
    )
    run.note("replica_seconds", s.replica_seconds)
    run.note("time_to_first_scale_s", s.time_to_first_scale_s)
    run.assert_passed()
