"""The emulated KEDA/HPA on the real twin, with the ScaledObject of fixtures/k8s run verbatim:
sustained load above 16 in flight per pod scales up, never above maxReplicaCount, and back down
to minReplicaCount once the load stops. time_scale 0.1 shrinks the HPA's 15 s sync and 60 s
scale-down window to 1.5 s and 6 s."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from twin_grpc import llm, stub

from loadgate.procs import wait_until
from loadgate.twin.manifests import apply_overrides, load_twin_spec
from loadgate.twin.stack import Twin

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "k8s"
IN_FLIGHT = 120  # 40 per pod at 3 replicas: well above the target of 16


# ~25 s; the rules are unit-tested (tests/unit/test_autoscaler.py) and the scale_up gate
# scales the twin in every `make test`; the cap at maxReplicaCount and the way back down to
# minReplicaCount end to end are here, in `make test-long`
@pytest.mark.long
def test_sustained_load_scales_up_to_max_then_down_to_min(tmp_path):
    spec = apply_overrides(load_twin_spec(FIXTURES), time_scale=0.1, restart_delay=1.0)
    so = spec.autoscaler
    assert so is not None and so.threshold == 16
    with Twin.up(spec, tmp_path / "twin") as twin:
        plat = twin.platform()
        assert plat.replicas().spec == so.min_replicas
        t0 = time.time()
        channel, s = stub(twin.grpc_target)
        calls: list = []
        try:
            deadline = time.monotonic() + 25  # bounded load phase
            while time.monotonic() < deadline:
                calls = [c for c in calls if not c.done()]
                while len(calls) < IN_FLIGHT:  # keep IN_FLIGHT long requests open
                    calls.append(s.ModelInfer.future(llm(2000), timeout=60))
                if plat.replicas().spec == so.max_replicas and time.time() - t0 > 10:
                    break
                time.sleep(0.1)
            peak = plat.replicas().spec
        finally:
            for c in calls:
                c.cancel()
            channel.close()
        assert peak == so.max_replicas, "load above target scales up to maxReplicaCount"
        wait_until(lambda: plat.replicas().ready == so.max_replicas, 30, what="all pods ready")

        wait_until(
            lambda: plat.replicas().spec == so.min_replicas, 90, interval=0.5, what="scale down"
        )
        frame = twin.timeline_frame(since=t0)
        spec_rows = frame[frame.metric == "replicas_spec"]
        assert spec_rows.value.max() == so.max_replicas, "never above maxReplicaCount"
        decided = frame[frame.metric == "autoscaler_desired"]
        assert len(decided) > 10, "every decision is recorded"
        rescales = [e for e in plat.events(since=t0) if e.reason == "SuccessfulRescale"]
        sizes = [int(e.message.split("New size: ")[1].split(";")[0]) for e in rescales]
        up, down = sizes[: sizes.index(so.max_replicas) + 1], sizes[sizes.index(so.max_replicas) :]
        assert up == sorted(up) and down == sorted(down, reverse=True), sizes
        assert sizes[-1] == so.min_replicas
        status = plat.scaled_object()["status"]
        assert status["last_decision"]["applied"] == so.min_replicas
