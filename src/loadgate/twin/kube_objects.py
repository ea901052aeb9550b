"""The twin's state as Kubernetes objects: pods, ReplicaSets, Deployments and their scale,
namespaces and core v1 Events, built with the official client's models. Pure functions: the
twin's live state comes in as the small frozen records below (`kube_state` reads them), objects
go out; `ApiClient().sanitize_for_serialization` turns them into the API's JSON.

Conditions are built without `lastTransitionTime`; `kube_state` stamps them, since only it
remembers when a condition last changed. Timestamps keep microseconds (a real API server
truncates most of them to seconds).
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from loadgate.platform.base import Event

NODE = "loadgate-twin"  # the one node the twin's pods run on
TEMPLATE_HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"


def timestamp(epoch: float | None) -> dt.datetime | None:
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, dt.UTC)


def uid(seed: str, kind: str, namespace: str, name: str) -> str:
    """A stable uid per object of one twin (the seed is the twin's run)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"loadgate-twin:{seed}/{kind}/{namespace}/{name}"))


# --- the twin's state, as the builders need it -------------------------------------------------


@dataclass(frozen=True)
class PodState:
    name: str
    ports: tuple[tuple[int, int], ...]  # manifest containerPort -> the port the twin's pod uses
    pid: int
    created: float  # epoch s
    started: float | None  # epoch s the container answered (None: still starting)
    ready: bool  # the kubelet's readiness verdict
    deletion: float | None = None  # deletionTimestamp: deleted at + grace (None: not deleted)
    grace_s: int | None = None


@dataclass(frozen=True)
class Workload:
    """A Deployment of the manifests, its ReplicaSet and its pods as the twin runs them."""

    manifest: client.V1Deployment
    namespace: str
    seed: str
    template_hash: str
    desired: int
    generation: int
    created: float
    pods: tuple[PodState, ...]

    @property
    def name(self) -> str:
        return self.manifest.metadata.name

    @property
    def replicaset(self) -> str:
        return f"{self.name}-{self.template_hash}"

    @property
    def live(self) -> tuple[PodState, ...]:
        """Pods the ReplicaSet counts: not being deleted."""
        return tuple(p for p in self.pods if p.deletion is None)

    @property
    def ready(self) -> int:
        return sum(1 for p in self.live if p.ready)

    def uid(self, kind: str, name: str | None = None) -> str:
        return uid(self.seed, kind, self.namespace, name or self.name)


def port_map(
    template: client.V1PodTemplateSpec, by_name: Mapping[str, int], default: int | None
) -> tuple[tuple[int, int], ...]:
    """Which real port stands for each containerPort of the template: by port name, else
    `default` (None keeps the manifest's number)."""
    out = []
    for c in template.spec.containers:
        for p in c.ports or []:
            real = by_name.get((p.name or "").lower(), default)
            out.append((p.container_port, p.container_port if real is None else real))
    return tuple(out)


def _meta(w: Workload, kind: str, name: str, created: float, **extra: Any) -> client.V1ObjectMeta:
    return client.V1ObjectMeta(
        name=name, namespace=w.namespace, uid=w.uid(kind, name),
        creation_timestamp=timestamp(created), **extra,
    )  # fmt: skip


def _owner(kind: str, name: str, owner_uid: str) -> client.V1OwnerReference:
    return client.V1OwnerReference(
        api_version="apps/v1", kind=kind, name=name, uid=owner_uid, controller=True,
        block_owner_deletion=True,
    )  # fmt: skip


def _template(w: Workload) -> client.V1PodTemplateSpec:
    tmpl = w.manifest.spec.template.model_copy(deep=True)
    tmpl.metadata = tmpl.metadata or client.V1ObjectMeta()
    tmpl.metadata.labels = {**(tmpl.metadata.labels or {}), TEMPLATE_HASH_LABEL: w.template_hash}
    return tmpl


def _condition(kind: type, type_: str, ok: bool, reason: str | None, message: str | None):
    return kind(type=type_, status="True" if ok else "False", reason=reason, message=message)


# --- pods -----------------------------------------------------------------------------------


def pod_object(w: Workload, p: PodState) -> client.V1Pod:
    tmpl = _template(w)
    spec = tmpl.spec
    real = dict(p.ports)
    for c in spec.containers:
        for port in c.ports or []:
            port.container_port = real.get(port.container_port, port.container_port)
    spec.node_name = NODE
    spec.restart_policy = spec.restart_policy or "Always"
    spec.scheduler_name = spec.scheduler_name or "default-scheduler"
    spec.service_account_name = spec.service_account_name or "default"
    if spec.termination_grace_period_seconds is None:
        spec.termination_grace_period_seconds = 30
    running = p.started is not None
    names = [c.name for c in spec.containers]
    unready = None if p.ready else f"containers with unready status: [{' '.join(names)}]"
    cond = client.V1PodCondition
    conditions = [
        _condition(cond, "PodReadyToStartContainers", True, None, None),
        _condition(cond, "Initialized", True, None, None),
        _condition(cond, "Ready", p.ready, None if p.ready else "ContainersNotReady", unready),
        _condition(
            cond, "ContainersReady", p.ready, None if p.ready else "ContainersNotReady", unready
        ),
        _condition(cond, "PodScheduled", True, None, None),
    ]
    state = (
        client.V1ContainerState(
            running=client.V1ContainerStateRunning(started_at=timestamp(p.started))
        )
        if running
        else client.V1ContainerState(
            waiting=client.V1ContainerStateWaiting(reason="ContainerCreating")
        )
    )
    statuses = [
        client.V1ContainerStatus(
            name=c.name, image=c.image or "", image_id="", container_id=f"loadgate://{p.pid}",
            ready=p.ready, started=running, restart_count=0, state=state,
        )
        for c in spec.containers
    ]  # fmt: skip
    meta = _meta(
        w, "Pod", p.name, p.created,
        generate_name=f"{w.replicaset}-", labels=tmpl.metadata.labels,
        annotations=tmpl.metadata.annotations,
        owner_references=[_owner("ReplicaSet", w.replicaset, w.uid("ReplicaSet", w.replicaset))],
        deletion_timestamp=timestamp(p.deletion), deletion_grace_period_seconds=p.grace_s,
    )  # fmt: skip
    return client.V1Pod(
        api_version="v1", kind="Pod", metadata=meta, spec=spec,
        status=client.V1PodStatus(
            phase="Running" if running else "Pending", conditions=conditions,
            host_ip="127.0.0.1", host_ips=[client.V1HostIP(ip="127.0.0.1")],
            pod_ip="127.0.0.1", pod_ips=[client.V1PodIP(ip="127.0.0.1")],
            start_time=timestamp(p.created), container_statuses=statuses,
            qos_class="Burstable",
        ),
    )  # fmt: skip


# --- ReplicaSet, Deployment, Scale -----------------------------------------------------------


def _max_unavailable(w: Workload) -> int:
    """The rolling update's maxUnavailable as a count (a percentage rounds down; default 25%)."""
    strategy = w.manifest.spec.strategy
    rolling = strategy.rolling_update if strategy is not None else None
    value: Any = "25%"
    if rolling is not None and rolling.max_unavailable is not None:
        value = rolling.max_unavailable
    if isinstance(value, str) and value.endswith("%"):
        return math.floor(w.desired * int(value[:-1]) / 100)
    return int(value)


def _count(n: int) -> int | None:
    return n or None  # the API omits zero counts (omitempty)


def replicaset_object(w: Workload) -> client.V1ReplicaSet:
    tmpl = _template(w)
    selector = dict(w.manifest.spec.selector.match_labels or {})
    selector[TEMPLATE_HASH_LABEL] = w.template_hash
    meta = _meta(
        w, "ReplicaSet", w.replicaset, w.created, labels=tmpl.metadata.labels,
        annotations={
            "deployment.kubernetes.io/desired-replicas": str(w.desired), REVISION: "1",
        },
        owner_references=[_owner("Deployment", w.name, w.uid("Deployment"))],
        generation=w.generation,
    )  # fmt: skip
    live, ready = len(w.live), w.ready
    return client.V1ReplicaSet(
        api_version="apps/v1", kind="ReplicaSet", metadata=meta,
        spec=client.V1ReplicaSetSpec(
            replicas=w.desired, selector=client.V1LabelSelector(match_labels=selector),
            template=tmpl,
        ),
        status=client.V1ReplicaSetStatus(
            replicas=live, fully_labeled_replicas=_count(live), ready_replicas=_count(ready),
            available_replicas=_count(ready), observed_generation=w.generation,
        ),
    )  # fmt: skip


def deployment_object(w: Workload) -> client.V1Deployment:
    dep = w.manifest.model_copy(deep=True)
    dep.api_version, dep.kind = "apps/v1", "Deployment"
    annotations = {**(dep.metadata.annotations or {}), REVISION: "1"}
    dep.metadata = _meta(
        w, "Deployment", w.name, w.created, labels=dep.metadata.labels,
        annotations=annotations, generation=w.generation,
    )  # fmt: skip
    dep.spec.replicas = w.desired
    live, ready = len(w.live), w.ready
    available = ready >= w.desired - _max_unavailable(w)
    complete = ready >= w.desired and live == w.desired
    cond = client.V1DeploymentCondition
    conditions = [
        _condition(
            cond, "Available", available,
            "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
            "Deployment has minimum availability." if available
            else "Deployment does not have minimum availability.",
        ),
        cond(
            type="Progressing", status="True",
            reason="NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
            message=f'ReplicaSet "{w.replicaset}" '
            + ("has successfully progressed." if complete else "is progressing."),
        ),
    ]  # fmt: skip
    dep.status = client.V1DeploymentStatus(
        observed_generation=w.generation, replicas=_count(live), updated_replicas=_count(live),
        ready_replicas=_count(ready), available_replicas=_count(ready),
        unavailable_replicas=_count(max(w.desired - ready, 0)), conditions=conditions,
    )  # fmt: skip
    return dep


def selector_string(labels: Mapping[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))


def scale_object(w: Workload) -> client.V1Scale:
    return client.V1Scale(
        api_version="autoscaling/v1", kind="Scale",
        metadata=_meta(w, "Deployment", w.name, w.created),
        spec=client.V1ScaleSpec(replicas=w.desired),
        status=client.V1ScaleStatus(
            replicas=len(w.live),
            selector=selector_string(w.manifest.spec.selector.match_labels),
        ),
    )  # fmt: skip


def namespace_object(seed: str, name: str, created: float) -> client.V1Namespace:
    return client.V1Namespace(
        api_version="v1", kind="Namespace",
        metadata=client.V1ObjectMeta(
            name=name, uid=uid(seed, "Namespace", "", name),
            creation_timestamp=timestamp(created),
            labels={"kubernetes.io/metadata.name": name},
        ),
        spec=client.V1NamespaceSpec(finalizers=["kubernetes"]),
        status=client.V1NamespaceStatus(phase="Active"),
    )  # fmt: skip


# --- events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventContext:
    """What turning the twin's events into Kubernetes Events needs to know."""

    workload: Workload
    container: str  # the model container's name
    hpa: str | None  # keda-hpa-<scaledobject>


def _event(
    ctx: EventContext, t: float, seq: int, kind: str, name: str, reason: str, message: str,
    component: str, type_: str = "Normal", field_path: str | None = None,
) -> client.CoreV1Event:  # fmt: skip
    w = ctx.workload
    api = {"Pod": "v1", "HorizontalPodAutoscaler": "autoscaling/v2"}.get(kind, "apps/v1")
    when = timestamp(t)
    return client.CoreV1Event(
        api_version="v1", kind="Event",
        metadata=_meta(w, "Event", f"{name}.{int(t * 1e9):x}{seq:x}", t),
        involved_object=client.V1ObjectReference(
            kind=kind, namespace=w.namespace, name=name, uid=w.uid(kind, name), api_version=api,
            field_path=field_path,
        ),
        reason=reason, message=message, type=type_, count=1,
        first_timestamp=when, last_timestamp=when,
        source=client.V1EventSource(component=component, host=NODE if component == "kubelet" else None),
        reporting_component=component, reporting_instance=NODE if component == "kubelet" else "",
    )  # fmt: skip


def core_events(ev: Event, ctx: EventContext, seq: int) -> list[client.CoreV1Event]:
    """The Events a cluster records for one of the twin's events (none for the twin's own
    bookkeeping: a kubelet reports no event when a pod turns ready, nor when one exits after
    deletion). `seq` (the twin event's number) keeps event names unique."""
    w, pod = ctx.workload, ev.name
    container = f"spec.containers{{{ctx.container}}}"
    out: list[client.CoreV1Event] = []

    def e(kind: str, name: str, reason: str, msg: str, comp: str, **kw: Any) -> None:
        out.append(_event(ctx, ev.time, seq * 4 + len(out), kind, name, reason, msg, comp, **kw))

    if ev.kind == "pod" and ev.reason == "Created":
        e(
            "ReplicaSet",
            w.replicaset,
            "SuccessfulCreate",
            f"Created pod: {pod}",
            "replicaset-controller",
        )
        e(
            "Pod",
            pod,
            "Scheduled",
            f"Successfully assigned {w.namespace}/{pod} to {NODE}",
            "default-scheduler",
        )
        e("Pod", pod, "Created", f"Created container {ctx.container}", "kubelet",
          field_path=container)  # fmt: skip
    elif ev.kind == "pod" and ev.reason == "Started":
        e("Pod", pod, "Started", f"Started container {ctx.container}", "kubelet",
          field_path=container)  # fmt: skip
    elif ev.kind == "pod" and ev.reason == "NotReady" and "probe" in ev.message:
        e("Pod", pod, "Unhealthy", "Readiness probe failed: HTTP probe failed", "kubelet",
          type_="Warning", field_path=container)  # fmt: skip
    elif ev.kind == "pod" and ev.reason in ("Killed", "Killing"):
        if ev.reason == "Killing":  # scale-down: the ReplicaSet chose the pod
            e("ReplicaSet", w.replicaset, "SuccessfulDelete", f"Deleted pod: {pod}",
              "replicaset-controller")  # fmt: skip
        e("Pod", pod, "Killing", f"Stopping container {ctx.container}", "kubelet",
          field_path=container)  # fmt: skip
    elif ev.kind == "scale" and ev.reason == "ScalingReplicaSet":
        new, old = ev.fields.get("replicas"), ev.fields.get("from_replicas")
        if new is not None and old is not None:
            way = "up" if int(new) > int(old) else "down"
            msg = f"Scaled {way} replica set {w.replicaset} to {new} from {old}"
            e("Deployment", w.name, "ScalingReplicaSet", msg, "deployment-controller")
    elif ev.kind == "autoscaler" and ev.reason == "SuccessfulRescale" and ctx.hpa:
        e("HorizontalPodAutoscaler", ctx.hpa, "SuccessfulRescale", ev.message,
          "horizontal-pod-autoscaler")  # fmt: skip
    return out
