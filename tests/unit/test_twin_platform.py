"""TwinPlatform speaks the control API (served here by pytest-httpserver) and finds detached
twins through state.json."""

from __future__ import annotations

import json
import os

import pytest
from werkzeug import Response

from loadgate.errors import UserError
from loadgate.platform.base import Platform
from loadgate.platform.twin import TwinPlatform
from loadgate.twin.daemon import clear_state, running_twin, write_state

POD = {
    "name": "model-abc-xyz12",
    "address": "127.0.0.1:5000",
    "ready": True,
    "queue": 4,
    "started": 1.5,
    "phase": "Running",
}


@pytest.fixture
def plat(httpserver) -> TwinPlatform:
    return TwinPlatform(httpserver.url_for("/"))


def test_is_a_platform(plat):
    assert isinstance(plat, Platform)


def test_pods_replicas_and_endpoints(httpserver, plat):
    httpserver.expect_request("/pods").respond_with_json([POD])
    httpserver.expect_request("/replicas").respond_with_json({"spec": 4, "ready": 3})
    httpserver.expect_request("/endpoints").respond_with_json(
        {"grpc_target": "127.0.0.1:1", "prometheus_url": "http://127.0.0.1:2"}
    )
    (pod,) = plat.pods()
    assert (pod.name, pod.address, pod.ready, pod.queue, pod.phase) == (
        "model-abc-xyz12", "127.0.0.1:5000", True, 4, "Running",
    )  # fmt: skip
    r = plat.replicas()
    assert (r.spec, r.ready) == (4, 3)
    assert plat.grpc_target == "127.0.0.1:1"
    assert plat.prometheus_url == "http://127.0.0.1:2"


def test_kill_and_scale_send_json(httpserver, plat):
    seen = []

    def kill(request):
        seen.append(request.get_json())
        return Response(json.dumps({"killed": ["p1"]}), content_type="application/json")

    httpserver.expect_request("/kill", method="POST").respond_with_handler(kill)
    httpserver.expect_request("/scale", method="POST", json={"replicas": 5}).respond_with_json(
        {"replicas": 5}
    )
    assert plat.kill_pods(percent=50, grace_period=2) == ["p1"]
    assert plat.kill_pods(names=["p1"]) == ["p1"]
    assert seen == [{"percent": 50, "grace_period": 2}, {"names": ["p1"], "grace_period": 0.0}]
    plat.scale(5)


def test_events_round_trip(httpserver, plat):
    ev = {"time": 5.0, "kind": "pod", "name": "p", "reason": "Killed", "message": "m", "fields": {}}
    httpserver.expect_request("/events", query_string="since=4.0").respond_with_json([ev])
    (e,) = plat.events(since=4.0)
    assert (e.time, e.kind, e.name, e.reason) == (5.0, "pod", "p", "Killed")


def test_api_errors_are_one_line_user_errors(httpserver, plat):
    httpserver.expect_request("/kill", method="POST").respond_with_json(
        {"error": "no such pod(s): zz"}, status=400
    )
    with pytest.raises(UserError, match="no such pod"):
        plat.kill_pods(names=["zz"])
    with pytest.raises(UserError, match="unreachable"):
        TwinPlatform("http://127.0.0.1:9", timeout=1).pods()


def test_from_state_and_stale_state(tmp_path):
    with pytest.raises(UserError, match="twin up --detach"):
        TwinPlatform.from_state(tmp_path)
    write_state(tmp_path, {"pid": os.getpid(), "control_url": "http://127.0.0.1:7"})
    assert TwinPlatform.from_state(tmp_path).control_url == "http://127.0.0.1:7"
    assert running_twin(tmp_path)["pid"] == os.getpid()
    clear_state(tmp_path, pid=os.getpid() + 1)  # someone else's: kept
    assert (tmp_path / "state.json").exists()
    write_state(tmp_path, {"pid": 2**22 + 12345, "control_url": "x"})  # owner long gone
    assert running_twin(tmp_path) is None
    assert not (tmp_path / "state.json").exists()
