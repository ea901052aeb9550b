"""The twin's state as Kubernetes objects (twin/kube_objects.py, twin/kube_autoscaling.py): built
with the official client's models, serialized as the API's JSON, deserialized again by the
official client and read back by loadgate's own Kubernetes readers (platform/k8s_objects.py) —
the path a real cluster's answers take."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubernetes import client

from loadgate.platform import k8s_objects as k8s
from loadgate.platform.base import Event
from loadgate.twin import kube_objects as ko
from loadgate.twin.autoscaler import Decision
from loadgate.twin.kube_autoscaling import AutoscalerState, hpa_object, quantity, scaled_object
from loadgate.twin.manifests import load_twin_spec

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "k8s"
API = client.ApiClient()
T0 = 1_796_000_000.0


def round_trip(obj, kind: str):
    """What the official client makes of the object's JSON."""
    return API.deserialize(
        json.dumps(API.sanitize_for_serialization(obj)), kind, "application/json"
    )


@pytest.fixture(scope="module")
def spec():
    return load_twin_spec(FIXTURES)


def workload(spec, pods=(), desired=3) -> ko.Workload:
    return ko.Workload(
        manifest=client.V1Deployment.from_dict(spec.kube_objects.model_deployment),
        namespace="loadgate", seed="run-1", template_hash="ktvmhfg2b9", desired=desired,
        generation=2, created=T0, pods=tuple(pods),
    )  # fmt: skip


def pod(spec, name="modelserver-ktvmhfg2b9-abcde", grpc=41001, http=41002, **kw) -> ko.PodState:
    tmpl = workload(spec).manifest.spec.template
    ports = ko.port_map(tmpl, dict.fromkeys(k8s.GRPC_PORT_NAMES, grpc), http)
    fields = dict(pid=4242, created=T0 + 1, started=T0 + 2, ready=True) | kw
    return ko.PodState(name=name, ports=ports, **fields)


def test_the_spec_carries_the_manifests_the_api_serves(spec):
    objs = spec.kube_objects
    assert objs.model_deployment["metadata"]["name"] == spec.deployment == "modelserver"
    assert objs.envoy_deployment["metadata"]["name"] == "envoy"  # it mounts Envoy's ConfigMap
    assert objs.scaled_object["spec"]["scaleTargetRef"] == {"name": "modelserver"}


def test_a_ready_pod_reads_back_as_loadgates_pod_with_the_twins_ports(spec):
    w = workload(spec)
    v1 = round_trip(ko.pod_object(w, pod(spec)), "V1Pod")
    p = k8s.to_pod(v1)
    assert (p.address, p.ready, p.phase, p.started) == ("127.0.0.1:41001", True, "Running", T0 + 2)
    assert p.labels == {
        "app.kubernetes.io/name": "modelserver",
        "app.kubernetes.io/part-of": "loadgate",
        "pod-template-hash": "ktvmhfg2b9",
    }
    (owner,) = v1.metadata.owner_references
    assert (owner.kind, owner.name, owner.controller) == ("ReplicaSet", w.replicaset, True)
    assert owner.uid == w.uid("ReplicaSet", w.replicaset) != w.uid("Deployment")
    c = v1.spec.containers[0]
    assert {p.name: p.container_port for p in c.ports} == {"grpc": 41001, "http": 41002}
    assert c.readiness_probe.http_get.port == "http"  # the probe names the port, as written
    assert v1.spec.termination_grace_period_seconds == 60  # from the manifest
    assert v1.metadata.creation_timestamp.timestamp() == T0 + 1
    assert [s.container_id for s in v1.status.container_statuses] == ["loadgate://4242"]


def test_a_starting_pod_is_pending_and_a_deleted_one_terminating(spec):
    w = workload(spec)
    starting = round_trip(ko.pod_object(w, pod(spec, started=None, ready=False)), "V1Pod")
    assert starting.status.phase == "Pending"
    assert starting.status.container_statuses[0].state.waiting.reason == "ContainerCreating"
    ready = next(c for c in starting.status.conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("False", "ContainersNotReady")
    assert ready.message == "containers with unready status: [modelserver]"
    assert k8s.to_pod(starting).phase == "Pending"

    gone = ko.pod_object(w, pod(spec, ready=False, deletion=T0 + 35, grace_s=30))
    v1 = round_trip(gone, "V1Pod")
    assert v1.metadata.deletion_timestamp.timestamp() == T0 + 35
    assert v1.metadata.deletion_grace_period_seconds == 30
    assert v1.status.phase == "Running"  # Kubernetes keeps the phase while terminating
    assert (k8s.to_pod(v1).phase, k8s.to_pod(v1).ready) == ("Terminating", False)


def test_deployment_counts_pods_as_the_controller_does(spec):
    pods = [
        pod(spec, "modelserver-ktvmhfg2b9-aaaaa"),
        pod(spec, "modelserver-ktvmhfg2b9-bbbbb"),
        pod(spec, "modelserver-ktvmhfg2b9-ccccc", ready=False),
        pod(spec, "modelserver-ktvmhfg2b9-ddddd", deletion=T0 + 9, grace_s=0),  # not counted
    ]
    dep = round_trip(ko.deployment_object(workload(spec, pods, desired=4)), "V1Deployment")
    assert (dep.spec.replicas, dep.status.replicas, dep.status.ready_replicas) == (4, 3, 2)
    assert dep.status.unavailable_replicas == 2 and dep.metadata.generation == 2
    conds = {c.type: (c.status, c.reason) for c in dep.status.conditions}
    # maxUnavailable 0 in the manifest: 2 of 4 ready is not available
    assert conds["Available"] == ("False", "MinimumReplicasUnavailable")
    assert dep.spec.selector.match_labels == {"app.kubernetes.io/name": "modelserver"}
    assert dep.spec.template.spec.containers[0].ports[0].container_port == 8001  # as written

    empty = API.sanitize_for_serialization(ko.deployment_object(workload(spec, [], desired=0)))
    assert "readyReplicas" not in empty["status"]  # zero counts are omitted, as the API does
    full = ko.deployment_object(workload(spec, pods[:2], desired=2))
    assert {c.type: c.status for c in full.status.conditions}["Available"] == "True"


def test_replicaset_and_scale(spec):
    w = workload(spec, [pod(spec)], desired=3)
    rs = round_trip(ko.replicaset_object(w), "V1ReplicaSet")
    assert rs.metadata.name == "modelserver-ktvmhfg2b9"
    assert rs.spec.selector.match_labels["pod-template-hash"] == "ktvmhfg2b9"
    assert rs.metadata.owner_references[0].name == "modelserver"
    scale = round_trip(ko.scale_object(w), "V1Scale")
    assert (scale.spec.replicas, scale.status.replicas) == (3, 1)
    assert scale.status.selector == "app.kubernetes.io/name=modelserver"


def twin_event(kind: str, name: str, reason: str, message: str = "", t=T0 + 5, **fields):
    return Event(time=t, kind=kind, name=name, reason=reason, message=message, fields=fields)


def test_twin_events_become_the_events_a_cluster_records(spec):
    w = workload(spec)
    ctx = ko.EventContext(w, "modelserver", "keda-hpa-modelserver")
    name = "modelserver-ktvmhfg2b9-abcde"
    twin = [
        twin_event("pod", name, "Created", "pid 1"),
        twin_event("pod", name, "Started"),
        twin_event("pod", name, "Ready", "readiness probe passed"),
        twin_event("pod", name, "NotReady", "readiness probe failed"),
        twin_event("pod", name, "NotReady", "terminating"),
        twin_event("pod", name, "Killed", "SIGKILL grace=0s"),
        twin_event("pod", name, "Exited", "exit code -9"),
        twin_event("pod", name, "Killing", "scale down"),
        twin_event("scale", "modelserver", "ScalingReplicaSet", "Scaled from 3 to 4",
                   replicas=4, from_replicas=3),
        twin_event("autoscaler", "keda-hpa-modelserver", "SuccessfulRescale",
                   "New size: 5; reason: 90 = 22.5/pod vs target 16"),
    ]  # fmt: skip
    built = [e for i, ev in enumerate(twin) for e in ko.core_events(ev, ctx, i)]
    items = [round_trip(e, "CoreV1Event") for e in built]
    assert len({e.metadata.name for e in items}) == len(items), "event names are unique"
    got = [(e.kind, e.reason) for e in k8s.to_events(items, "modelserver", "keda-hpa-modelserver")]
    assert got == [
        ("scale", "SuccessfulCreate"), ("pod", "Scheduled"), ("pod", "Created"),
        ("pod", "Started"), ("pod", "Unhealthy"),  # not for Ready, nor for "terminating"
        ("pod", "Killing"),  # a deleted pod; its exit is no event
        ("scale", "SuccessfulDelete"), ("pod", "Killing"),  # scale-down: the RS chose it
        ("scale", "ScalingReplicaSet"), ("autoscaler", "SuccessfulRescale"),
    ]  # fmt: skip
    events = k8s.to_events(items, "modelserver", "keda-hpa-modelserver")
    assert events[-2].message == "Scaled up replica set modelserver-ktvmhfg2b9 to 4 from 3"
    assert events[-1].fields["new_size"] == 5 and events[-1].time == T0 + 5
    unhealthy = next(e for e in items if e.reason == "Unhealthy")
    assert (unhealthy.type, unhealthy.source.component) == ("Warning", "kubelet")
    assert unhealthy.involved_object.field_path == "spec.containers{modelserver}"


# --- the ScaledObject and the HPA -------------------------------------------------------------


def decision(reason="steady", value=30.0, current=3, desired=2, applied=3, actor="hpa"):
    return Decision(T0 + 9, value, current, desired, applied, reason, reason, actor)


def autoscaler(spec, hpa=None, keda=None, failures=0, error=None, pods=3):
    target = workload(spec, [pod(spec, f"modelserver-ktvmhfg2b9-{i}aaaa") for i in range(pods)])
    return AutoscalerState(
        spec=spec.autoscaler, manifest=spec.kube_objects.scaled_object, target=target, hpa=hpa,
        keda=keda, error=error, failures=failures, last_active=T0 + 8, last_scale=T0 + 7,
    )  # fmt: skip


def test_quantity_prints_like_the_api():
    assert [quantity(16), quantity(0), quantity(22.5), quantity(1 / 3)] == [
        "16", "0", "22500m", "334m",
    ]  # fmt: skip


def test_scaled_object_conditions_follow_the_trigger(spec):
    so = scaled_object(autoscaler(spec), T0)
    assert k8s.conditions(so) == {
        "Ready": "True", "Active": "Unknown", "Fallback": "False", "Paused": "Unknown",
    }  # fmt: skip
    assert so["spec"]["scaleTargetRef"] == {"name": "modelserver"}  # the manifest's spec
    assert so["status"]["hpaName"] == "keda-hpa-modelserver"
    assert so["metadata"]["labels"]["scaledobject.keda.sh/name"] == "modelserver"
    active = scaled_object(autoscaler(spec, hpa=decision(value=30.0)), T0)
    assert k8s.conditions(active)["Active"] == "True"
    idle = scaled_object(autoscaler(spec, keda=decision(value=0.0, actor="keda")), T0)
    assert k8s.conditions(idle)["Active"] == "False"
    failing = scaled_object(autoscaler(spec, hpa=decision("metric_error"), failures=2), T0)
    ready = next(c for c in failing["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "TriggerError")
    assert failing["status"]["health"]["s0-prometheus"] == {
        "numberOfFailures": 2,
        "status": "Failure",
    }


@pytest.mark.parametrize(
    ("reason", "applied", "able", "limited"),
    [
        ("steady", 3, "ReadyForNewScale", ("False", "DesiredWithinRange")),
        ("scale_up", 4, "SucceededRescale", ("False", "DesiredWithinRange")),
        ("ScaleUpLimit", 5, "SucceededRescale", ("True", "ScaleUpLimit")),
        ("TooManyReplicas", 6, "SucceededRescale", ("True", "TooManyReplicas")),
        ("below_min", 3, "ReadyForNewScale", ("True", "TooFewReplicas")),
        ("ScaleDownStabilized", 3, "ScaleDownStabilized", ("False", "DesiredWithinRange")),
    ],
)
def test_hpa_conditions_follow_the_decision(spec, reason, applied, able, limited):
    hpa = round_trip(
        hpa_object(autoscaler(spec, hpa=decision(reason, applied=applied)), T0),
        "V2HorizontalPodAutoscaler",
    )
    conds = {c.type: (c.status, c.reason) for c in hpa.status.conditions}
    assert conds["AbleToScale"] == ("True", able)
    assert conds["ScalingActive"] == ("True", "ValidMetricFound")
    assert conds["ScalingLimited"] == limited
    assert (hpa.status.current_replicas, hpa.status.desired_replicas) == (3, applied)


def test_hpa_spec_and_metric_from_the_scaled_object(spec):
    a = autoscaler(spec, hpa=decision(value=30.0))
    hpa = round_trip(hpa_object(a, T0), "V2HorizontalPodAutoscaler")
    s = spec.autoscaler
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas) == (s.min_replicas, s.max_replicas)
    assert hpa.spec.scale_target_ref.name == "modelserver"
    metric = hpa.spec.metrics[0].external
    assert (metric.metric.name, metric.target.average_value) == ("s0-prometheus", "16")
    assert hpa.spec.behavior.scale_up.policies[0].value == s.scale_up.policies[0].value
    assert hpa.status.current_metrics[0].external.current.average_value == "10"  # 30 / 3 pods
    assert hpa.status.last_scale_time.timestamp() == T0 + 7
    assert hpa.metadata.owner_references[0].kind == "ScaledObject"
    failing = hpa_object(autoscaler(spec, hpa=decision("metric_error"), failures=1), T0)
    active = next(c for c in failing.status.conditions if c.type == "ScalingActive")
    assert (active.status, active.reason) == ("False", "FailedGetExternalMetric")
    idle = hpa_object(autoscaler(spec), T0)
    assert [c.type for c in idle.status.conditions] == ["AbleToScale"]  # no decision yet
