"""The chaos extension on Kubernetes, against recorded API responses served on loopback (the
real `kubernetes` client runs): an experiment's configuration selects the cluster from
loadgate.yaml's `kubernetes:` block; chaos outside the allowlist is refused before any API call
and before any load starts; inside it, kill_pods deletes a pod and the probes read the cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from loadgate.chaos import actions, probes, session
from loadgate.errors import UserError
from loadgate.platform.kubeconfig import write_kubeconfig

DATA = Path(__file__).resolve().parents[1] / "data" / "k8s"
NS = "loadgate"
PODS = f"/api/v1/namespaces/{NS}/pods"
DEPLOY = f"/apis/apps/v1/namespaces/{NS}/deployments/modelserver"
SO = f"/apis/keda.sh/v1alpha1/namespaces/{NS}/scaledobjects/modelserver"


def recorded(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def setup_config(tmp_path: Path, server: str, allowed: list[str]) -> dict:
    kc = write_kubeconfig(tmp_path / "kubeconfig", server, "kind-loadgate", NS, "recorded-token")
    cfg = tmp_path / "loadgate.yaml"
    cfg.write_text(yaml.safe_dump({"kubernetes": {
        "grpc_target": "127.0.0.1:18080", "kubeconfig": str(kc), "allowed": allowed,
        "selector": "app.kubernetes.io/name=modelserver",
    }}))  # fmt: skip
    return {"loadgate_platform": "kubernetes", "loadgate_config": str(cfg)}


@pytest.fixture(autouse=True)
def fresh_session():
    session.reset()
    yield
    session.reset()


def test_chaos_outside_the_allowlist_is_refused_before_any_api_call(httpserver, tmp_path):
    conf = setup_config(tmp_path, httpserver.url_for("").rstrip("/"), ["prod/*"])
    with pytest.raises(UserError, match="chaos refused.*kind-loadgate/loadgate"):
        actions.kill_pods(count=1, configuration=conf)
    with pytest.raises(UserError, match="chaos refused"):
        probes.ready_replicas(configuration=conf)
    assert httpserver.log == []


def test_control_refuses_to_start_load_on_a_cluster_outside_the_allowlist(httpserver, tmp_path):
    from chaoslib.exceptions import InterruptExecution

    from loadgate.chaos import control

    conf = setup_config(tmp_path, httpserver.url_for("").rstrip("/"), [])
    conf["loadgate_out"] = str(tmp_path / "run")
    with pytest.raises(InterruptExecution, match="chaos refused"):
        control.before_experiment_control({"title": "t"}, configuration=conf)
    assert control._handle is None and httpserver.log == []
    assert not (tmp_path / "run" / control.LOAD_FILE).exists()


def test_kill_pods_and_probes_on_an_allowed_cluster(httpserver, tmp_path):
    conf = setup_config(tmp_path, httpserver.url_for("").rstrip("/"), ["kind-loadgate/loadgate"])
    httpserver.expect_request(DEPLOY, method="GET").respond_with_json(recorded("deployment.json"))
    httpserver.expect_request(PODS, method="GET").respond_with_json(recorded("pods.json"))
    httpserver.expect_oneshot_request(
        f"{PODS}/modelserver-7c9d8f6b5d-4xk2p",
        method="DELETE",
        query_string={"gracePeriodSeconds": "0"},
    ).respond_with_json(recorded("pod-delete.json"))
    httpserver.expect_request(SO, method="GET").respond_with_json(recorded("scaledobject.json"))

    assert actions.kill_pods(count=1, configuration=conf) == ["modelserver-7c9d8f6b5d-4xk2p"]
    httpserver.check_assertions()
    assert session.current().replicas_before == 4  # remembered for restore_replicas
    kills = [e for e in session.current().events if e["metric"] == "kill_pods"]
    assert json.loads(kills[0]["labels"]) == {"pod": "modelserver-7c9d8f6b5d-4xk2p",
                                               "signal": "SIGKILL"}  # fmt: skip
    assert probes.ready_replicas(configuration=conf) == 2
    assert probes.replicas_restored(timeout_s=0, configuration=conf) is False
    so = probes.scaled_object_status(configuration=conf)
    assert so["name"] == "modelserver" and isinstance(so["ready"], bool)
