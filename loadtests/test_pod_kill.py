"""Gate: one model pod is killed (SIGKILL) during steady mixed load.

Only calls in flight on that pod may fail (none elsewhere, none later); every call is accounted
for; the Deployment's replacement is ready and serving within a bound; p99 of short requests
recovers within a bound. The kill happens at the start of the scenario's `kill` phase; figures
come from `loadgate.judge.podkill`, thresholds from loadgate.yaml's `gates.pod_kill`.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from loadgate.judge.accounting import accounting
from loadgate.judge.podkill import calls_on_new_pods, podkill
from loadgate.traffic.live import read_live

pytestmark = [pytest.mark.gate("pod_kill")]


def first_send(out_dir: Path, timeout: float) -> float:
    """Scheduled send of the load's first call (the kill is timed from it, not from the
    generator's start-up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = read_live(out_dir)
        if len(rows):
            return float(rows["intended"].min())
        time.sleep(0.2)
    raise TimeoutError(f"no call finished within {timeout:.0f}s of the load's start")


def kill_offset_s(scenario, kill_phase: str) -> float:
    """Seconds from the load's start to the start of the kill phase."""
    offset = 0.0
    for phase in scenario.phases:
        if phase.name == kill_phase:
            return offset
        offset += phase.duration_s
    raise AssertionError(f"scenario {scenario.name} has no '{kill_phase}' phase")


def test_pod_kill(run_gate, gate_session):
    params = gate_session.params("pod_kill")
    offset = kill_offset_s(gate_session.scenarios["pod_kill"], params.kill_phase)
    out_dir = gate_session.run_dir / "gates" / "pod_kill"

    def kill_one_pod(platform, load_start: float) -> dict:
        t0 = first_send(out_dir, params.first_call_timeout_s)
        time.sleep(max(0.0, t0 + offset - time.time()))
        victim = sorted((p for p in platform.pods() if p.ready), key=lambda p: p.name)[0]
        t = time.time()
        killed = platform.kill_pods(names=[victim.name], grace_period=0)
        assert killed == [victim.name], f"kill_pods returned {killed}"
        return {"time": t, "pod": victim.name, "address": victim.address}

    run = run_gate("pod_kill", during=kill_one_pod)
    kill = run.during_result
    assert kill, f"the pod was not killed: {run.during_error}"

    def judged(samples):
        return podkill(
            samples,
            run.timeline,
            kill_time=kill["time"],
            victim=kill["pod"],
            victim_address=kill["address"],
            grace_s=run.facts.probe_s * 2,
            window_s=params.window_s,
            factor=params.factor,
            hold=params.hold,
        )

    stack, client = judged(run.stack_samples), judged(run.samples)
    run.note("victim_inflight", stack.victim_inflight)
    run.note("failed_attributable", stack.failed_attributable)
    run.note("baseline_p99_ms", client.baseline_p99_ms)
    # the proxy's request counter vs the calls sent (kept, not judged: retries of calls cut by
    # the kill are counted by the proxy too)
    run.note("proxy_mismatch", accounting(run.samples, run.timeline).proxy_mismatch)
    run.check("failed_elsewhere", stack=stack.failed_elsewhere, client=client.failed_elsewhere)
    run.check("accounted", client=1.0 if client.accounted else 0.0)
    run.check("replica_back_s", stack=stack.replica_back_s)
    run.check(
        "new_pod_calls",
        stack=calls_on_new_pods(run.stack_samples, run.pods, kill["time"]),
        client=calls_on_new_pods(run.samples, run.pods, kill["time"]),
    )
    run.check(
        "p99_recovery_s",
        f"{params.window_s:g} s windows",
        stack=stack.p99_recovery_s,
        client=client.p99_recovery_s,
    )
    run.assert_passed()
