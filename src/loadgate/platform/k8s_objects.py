"""Pure translations from Kubernetes API objects to loadgate's Platform types.

Kept apart from the client code so the rules (what counts as ready, which port is the gRPC one,
how an HPA event becomes an autoscaler Event) are plain functions over the client's models.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from loadgate.platform.base import Event, Pod

TRITON_GRPC_PORT = 8001  # Triton's default gRPC port, used when the pod spec names none
GRPC_PORT_NAMES = ("grpc", "h2c", "grpc-inference")  # container port names taken as the gRPC one

_NEW_SIZE = re.compile(r"New size:\s*(\d+)")


def _epoch(ts: datetime | None) -> float | None:
    return ts.timestamp() if ts is not None else None


def grpc_port(pod: Any, explicit: int | None = None) -> int:
    """The pod's gRPC port: explicit config, else a containerPort named grpc, else the first."""
    if explicit:
        return explicit
    ports = [p for c in (pod.spec.containers or []) for p in (c.ports or [])]
    for p in ports:
        if (p.name or "").lower() in GRPC_PORT_NAMES:
            return int(p.container_port)
    return int(ports[0].container_port) if ports else TRITON_GRPC_PORT


def pod_ready(pod: Any) -> bool:
    """Ready means the Ready condition is True (the same signal Endpoints use)."""
    if pod.metadata.deletion_timestamp is not None:
        return False
    for cond in (pod.status and pod.status.conditions) or []:
        if cond.type == "Ready":
            return cond.status == "True"
    return False


def pod_started(pod: Any) -> float | None:
    """Epoch s the first container started running (restarts move it), or the pod's start."""
    for cs in (pod.status and pod.status.container_statuses) or []:
        running = cs.state and cs.state.running
        if running and running.started_at:
            return _epoch(running.started_at)
    return None


def pod_phase(pod: Any) -> str:
    if pod.metadata.deletion_timestamp is not None:
        return "Terminating"
    return (pod.status and pod.status.phase) or "Pending"


def to_pod(pod: Any, port: int | None = None) -> Pod:
    ip = (pod.status and pod.status.pod_ip) or ""
    return Pod(
        name=pod.metadata.name,
        address=f"{ip}:{grpc_port(pod, port)}" if ip else "",
        ready=pod_ready(pod),
        started=pod_started(pod),
        phase=pod_phase(pod),
        queue=None,  # not visible through the API; read nv_inference_pending_request_count
        labels=dict(pod.metadata.labels or {}),
    )


def pick_victims(
    pods: list[Pod], names: list[str] | None, count: int | None, percent: float | None
) -> list[Pod]:
    """Which pods a kill request means. Terminating pods are never picked twice.

    Explicit names win; else `count`, else `percent` of the candidates (rounded up, at least
    one); else one pod. Ready pods go first (killing a pod already out of rotation tests
    nothing), then by name so a run is reproducible.
    """
    live = [p for p in pods if p.phase != "Terminating"]
    if names:
        wanted = set(names)
        return [p for p in live if p.name in wanted]
    ordered = sorted(live, key=lambda p: (not p.ready, p.name))
    if count is not None:
        n = count
    elif percent is not None:
        n = max(1, math.ceil(len(ordered) * percent / 100.0)) if percent > 0 else 0
    else:
        n = 1
    return ordered[: max(0, n)]


def event_time(ev: Any) -> float:
    for ts in (ev.last_timestamp, ev.event_time, ev.first_timestamp):
        if ts is not None:
            return ts.timestamp()
    created = ev.metadata and ev.metadata.creation_timestamp
    return created.timestamp() if created else 0.0


def classify_event(ev: Any, deployment: str, hpa: str | None, scaled_object: str | None) -> str:
    """pod | scale | autoscaler, or "" when the event is not about the model stack."""
    obj = ev.involved_object
    kind, name = obj.kind or "", obj.name or ""
    if kind == "HorizontalPodAutoscaler" and hpa and name == hpa:
        return "autoscaler"
    if kind == "ScaledObject" and scaled_object and name == scaled_object:
        return "autoscaler"
    if kind == "Deployment" and name == deployment:
        return "scale"
    if kind == "ReplicaSet" and name.startswith(deployment + "-"):
        return "scale"
    if kind == "Pod" and name.startswith(deployment + "-"):
        return "pod"
    return ""


def to_events(
    items: Iterable[Any],
    deployment: str,
    hpa: str | None = None,
    scaled_object: str | None = None,
    since: float = 0.0,
) -> list[Event]:
    """Core v1 Events about the model Deployment, its pods and its autoscaler, oldest first.

    An HPA `SuccessfulRescale` ("New size: 5; reason: ...") carries `new_size` in fields.
    """
    out: list[Event] = []
    for ev in items:
        kind = classify_event(ev, deployment, hpa, scaled_object)
        t = event_time(ev)
        if not kind or t < since:
            continue
        message = (ev.message or "").strip()
        fields: dict[str, Any] = {"type": ev.type or "", "count": ev.count or 1}
        m = _NEW_SIZE.search(message)
        if m:
            fields["new_size"] = int(m.group(1))
        out.append(
            Event(
                time=t,
                kind=kind,
                name=ev.involved_object.name or "",
                reason=ev.reason or "",
                message=message,
                fields=fields,
            )
        )
    out.sort(key=lambda e: e.time)
    return out


def conditions(obj: dict[str, Any]) -> dict[str, str]:
    """status.conditions of a custom object as {type: status} (Ready, Active, Fallback, Paused)."""
    conds = ((obj or {}).get("status") or {}).get("conditions") or []
    return {c.get("type", ""): str(c.get("status", "Unknown")) for c in conds if c.get("type")}


def selector_string(match_labels: dict[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((match_labels or {}).items()))
