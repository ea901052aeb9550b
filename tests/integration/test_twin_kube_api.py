"""The twin's emulated Kubernetes API (`--kube-api`) driven by real clients: loadgate's
`KubernetesPlatform`, chaostoolkit-kubernetes in `chaos run`, the official client's watch and
dynamic (discovery-driven) client. What they do through the API happens to the twin's pods."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from twin_grpc import infer, stub

from loadgate.errors import UserError
from loadgate.observe.envoy_access import parse_access_log
from loadgate.platform.kubeconfig import connect
from loadgate.platform.kubernetes import KubernetesPlatform
from loadgate.procs import wait_until
from loadgate.twin.kube_api import CONTEXT
from loadgate.twin.manifests import apply_overrides, load_twin_spec
from loadgate.twin.stack import Twin

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "k8s"
NS = "loadgate"
MODEL = "app.kubernetes.io/name=modelserver"


@pytest.fixture
def kube_twin(tmp_path):
    """`boot(**overrides)`: a twin at time scale 0.1 with the emulated API; stopped after."""
    twins: list[Twin] = []

    def boot(**overrides) -> Twin:
        spec = apply_overrides(load_twin_spec(FIXTURES), time_scale=0.1, **overrides)
        twins.append(Twin.up(spec, tmp_path / f"twin{len(twins)}", kube_api=True))
        return twins[-1]

    yield boot
    for t in twins:
        t.down()
    left = [th.name for th in threading.enumerate() if th.name.startswith("twin-kube")]
    assert left == [], "the API's threads stop with the twin"


def platform(twin: Twin, **changes) -> KubernetesPlatform:
    block = twin.kubernetes_block()
    assert block is not None
    return KubernetesPlatform.from_config({**block, **changes})


def api(twin: Twin) -> client.ApiClient:
    return connect(CONTEXT, NS, str(twin.kubeconfig_path)).api


def model_pods(twin: Twin) -> dict[str, str]:
    """The supervisor's own view: live pod name -> gRPC address."""
    assert twin.supervisor is not None
    return {p.name: p.address for p in twin.supervisor.pods() if p.phase != "Terminating"}


def killed_signals(twin: Twin) -> dict[str, str]:
    return {e.name: e.fields["signal"] for e in twin.log.events() if e.reason == "Killed"}


@pytest.mark.timeout(90)
def test_kubernetes_platform_lists_kills_and_scales_the_twins_pods(kube_twin):
    twin = kube_twin(no_autoscaler=True, restart_delay=1.0)
    k, t0 = platform(twin), time.time()
    pods = k.pods()
    assert {p.name: p.address for p in pods} == model_pods(twin)
    assert all(p.ready and p.phase == "Running" for p in pods) and len(pods) == 3
    assert k.replicas().spec == k.replicas().ready == 3

    (first,) = k.kill_pods(count=1, grace_period=0)
    assert killed_signals(twin)[first] == "SIGKILL"
    wait_until(lambda: first not in model_pods(twin), 10, what="the killed pod gone")
    wait_until(lambda: k.replicas().ready == 3, 20, what="its replacement ready")
    assert first not in {p.name for p in k.pods()}

    (second,) = k.kill_pods(count=1, grace_period=3)
    assert killed_signals(twin)[second] == "SIGTERM"
    pod = client.CoreV1Api(api(twin)).read_namespaced_pod(second, NS)
    assert pod.metadata.deletion_grace_period_seconds == 3
    assert pod.metadata.deletion_timestamp.timestamp() == pytest.approx(time.time() + 3, abs=1.5)
    assert next(c for c in pod.status.conditions if c.type == "Ready").status == "False"
    wait_until(lambda: second not in model_pods(twin), 10, what="SIGTERM ends the pod")

    k.scale(4)
    assert twin.supervisor is not None and twin.supervisor.desired == 4
    wait_until(lambda: k.replicas().ready == 4, 20, what="4 ready pods")
    rows = k.snapshot()
    ready = {json.loads(r["labels"])["address"] for r in rows if r["metric"] == "pod_ready"}
    assert ready == set(model_pods(twin).values())

    events = k.events(since=t0)
    seen = {(e.kind, e.name, e.reason) for e in events}
    assert {("pod", first, "Killing"), ("pod", second, "Killing")} <= seen
    created = [e.message for e in events if e.reason == "SuccessfulCreate"]
    assert len(created) == 3, created  # two replacements and the 4th pod
    scaled = [e.message for e in events if e.reason == "ScalingReplicaSet"]
    assert scaled == ["Scaled up replica set modelserver-ktvmhfg2b9 to 4 from 3"]


@pytest.mark.timeout(60)
def test_the_allowlist_refuses_a_context_or_namespace_not_named(kube_twin):
    twin = kube_twin(no_autoscaler=True)
    before = model_pods(twin)
    assert twin.kube_api is not None
    asked = len(twin.kube_api.requests)
    other_context = platform(twin, allowed=["kind-loadgate/loadgate"])
    other_namespace = platform(twin, namespace="staging")  # allowed: loadgate-twin/loadgate
    for p in (other_context, other_namespace):
        with pytest.raises(UserError, match="not in the allowlist"):
            p.kill_pods(count=1)
        with pytest.raises(UserError, match="not in the allowlist"):
            p.scale(5)
    assert twin.kube_api.requests[asked:] == [], "refused before any API call"
    assert model_pods(twin) == before and twin.supervisor.desired == 3
    assert other_namespace.pods(MODEL) == []  # the API itself serves an empty namespace


@pytest.mark.timeout(90)
def test_scaled_object_and_hpa_follow_the_emulated_autoscaler(kube_twin):
    twin = kube_twin()
    k = platform(twin)
    twin.wait_metrics()  # the autoscaler decides once Prometheus has a sample
    so = twin.spec.autoscaler
    assert so is not None

    def hpa_decided() -> bool:
        return any(c["type"] == "ScalingActive" for c in k.hpa()["status"]["conditions"])

    wait_until(hpa_decided, 20, what="the HPA's first decision")
    assert k.scaled_object_conditions() == {
        "Ready": "True",
        "Active": "False",
        "Fallback": "False",
        "Paused": "Unknown",
    }  # fmt: skip  (no load: the trigger is not active)
    hpa = k.hpa()
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (
        so.min_replicas,
        so.max_replicas,
    )
    conds = {c["type"]: (c["status"], c["reason"]) for c in hpa["status"]["conditions"]}
    assert conds["ScalingLimited"] == ("True", "TooFewReplicas")  # 0 in flight wants 0 pods

    t0 = time.time()
    assert twin.supervisor is not None
    twin.supervisor.scale(so.min_replicas - 1)  # below minReplicaCount: the autoscaler restores it

    def rescaled() -> list:
        return [e for e in k.events(since=t0) if e.reason == "SuccessfulRescale"]

    wait_until(rescaled, 20, what="SuccessfulRescale from keda-hpa-modelserver")
    (event, *_) = rescaled()
    assert (event.kind, event.name, event.fields["new_size"]) == (
        "autoscaler", "keda-hpa-modelserver", so.min_replicas,
    )  # fmt: skip
    wait_until(lambda: k.replicas().spec == so.min_replicas, 10, what="spec restored")
    status = k.hpa()["status"]
    assert status["desiredReplicas"] == so.min_replicas and "lastScaleTime" in status
    with pytest.raises(
        UserError, match=r"^not found: scaledobjects.keda.sh in namespace 'loadgate'"
    ):
        platform(twin, scaled_object="missing").scaled_object()


@pytest.mark.timeout(60)
def test_official_watch_sees_a_killed_pod_leave_and_its_replacement_arrive(kube_twin):
    twin = kube_twin(no_autoscaler=True, restart_delay=1.0)
    core = client.CoreV1Api(api(twin))
    w = watch.Watch()
    initial: set[str] = set()
    seen: list[tuple[str, str, bool, bool]] = []  # type, pod, terminating, ready
    victim = None
    for ev in w.stream(core.list_namespaced_pod, NS, label_selector=MODEL, timeout_seconds=30):
        pod = ev["object"]
        assert isinstance(pod, client.V1Pod)
        ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)
        seen.append(
            (ev["type"], pod.metadata.name, pod.metadata.deletion_timestamp is not None, ready)
        )
        if victim is None:
            initial.add(pod.metadata.name)
            if len(initial) == 3:  # the synthetic ADDED of every pod came first
                victim = sorted(initial)[0]
                core.delete_namespaced_pod(victim, NS, grace_period_seconds=0)
        elif ev["type"] != "DELETED" and pod.metadata.name not in initial and ready:
            w.stop()  # the replacement serves
    assert [s[0] for s in seen[:3]] == ["ADDED"] * 3
    mine = [(s[0], s[2]) for s in seen if s[1] == victim]
    assert mine[0] == ("ADDED", False) and mine[-2:] == [("MODIFIED", True), ("DELETED", True)]
    assert {t for t, _ in mine[1:-1]} == {"MODIFIED"}, seen
    new = [s for s in seen if s[1] not in initial]
    assert new[0][0] == "ADDED" and new[-1][3], seen

    # resuming from a list's resourceVersion replays nothing old; a stale one is 410 Expired
    listed = core.list_namespaced_pod(NS, label_selector=MODEL)
    rv = listed.metadata.resource_version
    stream = w.stream(core.list_namespaced_pod, NS, resource_version=rv, timeout_seconds=1)
    assert [e["type"] for e in stream] == []
    with pytest.raises(ApiException) as gone:
        list(w.stream(core.list_namespaced_pod, NS, resource_version="1", timeout_seconds=2))
    assert gone.value.status == 410


@pytest.mark.timeout(90)
def test_chaostoolkit_kubernetes_terminates_and_scales_through_the_api(kube_twin, tmp_path):
    twin = kube_twin(no_autoscaler=True, restart_delay=1.0)
    before = set(model_pods(twin))

    def activity(kind: str, title: str, module: str, func: str, **arguments) -> dict:
        provider = {"type": "python", "module": module, "func": func, "arguments": arguments}
        return {"type": kind, "name": title, "provider": provider}

    available = ("chaosk8s.deployment.probes", "deployment_fully_available")
    experiment = {
        "title": "chaostoolkit-kubernetes against the twin's emulated API",
        "description": "terminate a model pod, wait for its replacement, scale to 4",
        "method": [
            activity("action", "terminate", "chaosk8s.pod.actions", "terminate_pods",
                     label_selector=MODEL, qty=1, grace_period=0, ns=NS),
            activity("probe", "replaced", *available, name="modelserver", ns=NS, timeout=30),
            activity("action", "scale", "chaosk8s.deployment.actions", "scale_deployment",
                     name="modelserver", replicas=4, ns=NS),
            activity("probe", "scaled", *available, name="modelserver", ns=NS, timeout=30),
        ],
    }  # fmt: skip
    path, journal = tmp_path / "experiment.json", tmp_path / "journal.json"
    path.write_text(json.dumps(experiment))
    # chaosk8s builds its own client from KUBECONFIG and KUBERNETES_CONTEXT
    env = {**os.environ, "KUBECONFIG": str(twin.kubeconfig_path), "KUBERNETES_CONTEXT": CONTEXT}
    chaos = Path(sys.executable).with_name("chaos")
    cmd = [str(chaos), "--no-version-check", "--log-file", str(tmp_path / "chaos.log"), "run"]
    cmd += ["--journal-path", str(journal), str(path)]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=80)
    assert journal.exists(), proc.stderr[-2000:]
    j = json.loads(journal.read_text())
    assert (j["status"], j["deviated"]) == ("completed", False), proc.stderr[-2000:]
    terminated, replaced, _scale, scaled = j["run"]
    (victim,) = terminated["output"]
    assert victim in before and victim not in model_pods(twin)
    assert killed_signals(twin)[victim] == "SIGKILL"  # grace_period 0 in the DeleteOptions body
    assert replaced["output"] is True and scaled["output"] is True
    assert twin.supervisor is not None and twin.supervisor.desired == 4
    assert len(model_pods(twin)) == 4 and twin.supervisor.ready_count() == 4
    assert twin.kube_api is not None
    asked = [r.split("?")[0] for r in twin.kube_api.requests]
    assert f"DELETE /api/v1/namespaces/{NS}/pods/{victim}" in asked
    assert f"PATCH /apis/apps/v1/namespaces/{NS}/deployments/modelserver" in asked


def _http(url: str, method: str = "GET") -> tuple[int, dict]:
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


@pytest.mark.timeout(60)
def test_envoy_pod_log_discovery_and_errors_as_the_api_server_answers(kube_twin):
    twin = kube_twin(no_autoscaler=True)
    k, t0 = platform(twin), time.time()
    channel, s = stub(twin.grpc_target)
    try:
        served = [infer(s)["x-upstream-host"] for _ in range(5)]
    finally:
        channel.close()

    def logged() -> int:
        return len(parse_access_log(k.envoy_pod_logs(since=t0))[0])

    wait_until(lambda: logged() == 5, 10, what="5 access log lines in the Envoy pod's log")
    proxy, bad = parse_access_log(k.envoy_pod_logs(since=t0))
    assert bad == 0 and sorted(proxy["upstream"]) == sorted(served)
    core = client.CoreV1Api(api(twin))
    envoy = core.list_namespaced_pod(NS, label_selector="app.kubernetes.io/name=envoy").items
    (envoy_pod,) = [p.metadata.name for p in envoy]
    assert len(core.read_namespaced_pod_log(envoy_pod, NS, tail_lines=2).splitlines()) == 2

    # discovery, as the dynamic client reads it (/api, /apis, /api/v1, /apis/<group>/<version>)
    from kubernetes.dynamic import DynamicClient

    dyn = DynamicClient(api(twin))
    so = dyn.resources.get(api_version="keda.sh/v1alpha1", kind="ScaledObject")
    assert so.namespaced and "get" in so.verbs
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment").get(namespace=NS)
    assert sorted(d.metadata.name for d in deployments.items) == ["envoy", "modelserver"]

    # errors are Status objects, as a real API server sends them
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod("nope", NS)
    body = json.loads(e.value.body)
    assert (e.value.status, body["kind"], body["reason"]) == (404, "Status", "NotFound")
    assert body["message"] == 'pods "nope" not found'
    with pytest.raises(ApiException) as e:
        core.list_namespaced_pod(NS, label_selector="tier in ()")
    assert e.value.status == 400 and json.loads(e.value.body)["reason"] == "BadRequest"
    apps = client.AppsV1Api(api(twin))
    with pytest.raises(ApiException) as e:
        apps.patch_namespaced_deployment("modelserver", NS, {"spec": {"paused": True}})
    assert e.value.status == 422 and "only spec.replicas" in json.loads(e.value.body)["message"]
    with pytest.raises(ApiException) as e:
        core.delete_namespaced_pod(envoy_pod, NS)  # the twin has one Envoy and cannot lose it
    assert e.value.status == 403
    with pytest.raises(ApiException) as e:
        apps.patch_namespaced_deployment_scale("envoy", NS, {"spec": {"replicas": 2}})
    assert e.value.status == 422
    stale = {"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 4}}
    with pytest.raises(ApiException) as e:
        apps.patch_namespaced_deployment_scale("modelserver", NS, stale)
    assert e.value.status == 409 and json.loads(e.value.body)["reason"] == "Conflict"
    some = next(iter(model_pods(twin)))
    core.delete_namespaced_pod(some, NS, dry_run="All")
    assert some in model_pods(twin), "a dry run deletes nothing"
    url = twin.kube_api_url
    code, st = _http(f"{url}/api/v1/namespaces/{NS}/services")
    assert (code, st["reason"], st["message"]) == (
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
    code, st = _http(f"{url}/api/v1/namespaces/{NS}/pods", method="POST")
    assert (code, st["reason"]) == (405, "MethodNotAllowed")
    assert twin.supervisor is not None and twin.supervisor.desired == 3, "nothing changed"


@pytest.mark.timeout(90)
def test_detached_twin_with_kube_api_publishes_its_kubeconfig_and_stops_it(tmp_path):
    def loadgate(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "loadgate.cli", "twin", *args],
            cwd=tmp_path, capture_output=True, text=True, timeout=80,
        )  # fmt: skip

    up = loadgate("up", "--detach", "--kube-api", "--manifests", str(FIXTURES),
                  "--time-scale", "0.1", "--no-autoscaler")  # fmt: skip
    try:
        assert up.returncode == 0, up.stderr
        state = json.loads((tmp_path / ".loadgate" / "twin" / "state.json").read_text())
        block = state["kubernetes"]
        assert f"kubeconfig:      {block['kubeconfig']}  (context {CONTEXT})" in up.stdout
        assert "  kubernetes:\n    grpc_target: " in up.stdout  # the block for loadgate.yaml
        assert block["allowed"] == [f"{CONTEXT}/{NS}"] and block["scaled_object"] is None
        assert len(KubernetesPlatform.from_config(block).pods()) == 3
        _, endpoints = _http(f"{state['control_url']}/endpoints")
        assert endpoints["kube_api_url"] == state["kube_api_url"]
    finally:
        down = loadgate("down")
    assert down.returncode == 0, down.stderr
    host, port = state["kube_api_url"].removeprefix("http://").split(":")
    with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=2):
        pass


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.timeout(60)
def test_kubectl_reads_deletes_and_scales(kube_twin):
    twin = kube_twin(no_autoscaler=True)
    env = {**os.environ, "KUBECONFIG": str(twin.kubeconfig_path)}

    def kubectl(*args: str) -> str:
        proc = subprocess.run(
            ["kubectl", *args], env=env, capture_output=True, text=True, timeout=30
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    pods = json.loads(kubectl("get", "pods", "-l", MODEL, "-o", "json"))["items"]
    assert {p["metadata"]["name"] for p in pods} == set(model_pods(twin))
    victim = pods[0]["metadata"]["name"]
    kubectl("delete", "pod", victim, "--grace-period=0", "--force")
    assert victim not in model_pods(twin)
    kubectl("scale", "deployment/modelserver", "--replicas=2")
    assert twin.supervisor is not None and twin.supervisor.desired == 2
    assert "scaledobjects" in kubectl("api-resources")
