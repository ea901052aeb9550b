"""The Platform interface: what the gate, the chaos extension and the CLI may ask of a stack.

Two implementations: `platform/twin.py` (the local twin, over its control API) and
`platform/kubernetes.py` (the official kubernetes client). Keep this interface small and in
Kubernetes terms, so both can honour it exactly.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from loadgate.schema import encode_labels

TimelineRow = dict[str, Any]  # one row of the TIMELINE contract (loadgate.schema)


@dataclass(frozen=True)
class Pod:
    name: str
    address: str  # "ip:port" of the pod's gRPC endpoint (what the proxy reports as upstream host)
    ready: bool
    started: float | None  # epoch s the container started; None while pending
    phase: str = "Running"  # Pending | Running | Terminating | Failed
    queue: int | None = None  # inference queue depth when the platform can see it
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Replicas:
    spec: int  # desired (Deployment .spec.replicas)
    ready: int  # pods ready (Deployment .status.readyReplicas)


@dataclass(frozen=True)
class Event:
    time: float  # epoch s
    kind: str  # pod | scale | autoscaler | chaos
    name: str  # object the event is about (pod name, deployment, scaledobject)
    reason: str  # Started | Killed | Ready | NotReady | SuccessfulRescale | ...
    message: str = ""
    fields: dict[str, Any] = field(default_factory=dict)


def event_row(ev: Event, source: str) -> TimelineRow:
    """An event as a timeline row: metric `<kind>_event`, the object under `pod` (or the kind's
    own label), with reason, message and fields as labels. The one conversion every stage uses."""
    labels = {
        "reason": ev.reason,
        "message": ev.message,
        **{k: str(v) for k, v in ev.fields.items()},
    }
    labels["pod" if ev.kind == "pod" else ev.kind] = ev.name
    return {
        "time": ev.time,
        "source": source,
        "metric": f"{ev.kind}_event",
        "labels": encode_labels(labels),
        "value": 1.0,
    }


def snapshot_rows(
    t: float, source: str, pods: Iterable[Pod], deployment: str, replicas: Replicas
) -> list[TimelineRow]:
    """One observation of the platform as timeline rows: `pod_ready` per pod (labels pod and
    address, what served_by holds), `replicas_spec` and `replicas_ready` of the Deployment —
    the names the judge reads (judge/names.py)."""
    rows = [
        {
            "time": t,
            "source": source,
            "metric": "pod_ready",
            "labels": encode_labels({"pod": p.name, "address": p.address}),
            "value": 1.0 if p.ready else 0.0,
        }
        for p in pods
    ]
    for metric, value in (("replicas_spec", replicas.spec), ("replicas_ready", replicas.ready)):
        rows.append(
            {
                "time": t,
                "source": source,
                "metric": metric,
                "labels": encode_labels({"deployment": deployment}),
                "value": float(value),
            }
        )
    return rows


class Platform(ABC):
    """A deployed inference stack. Methods are bounded in time; errors are UserError."""

    name: str = "abstract"

    @property
    @abstractmethod
    def grpc_target(self) -> str:
        """host:port of the L7 proxy's gRPC listener (where traffic goes)."""

    @property
    def prometheus_url(self) -> str | None:
        """Base URL of the Prometheus that sees the stack, if any."""
        return None

    @abstractmethod
    def pods(self, selector: str | None = None) -> list[Pod]:
        """Model-server pods matching a label selector (default: the model Deployment's)."""

    @abstractmethod
    def kill_pods(
        self,
        selector: str | None = None,
        count: int | None = None,
        percent: float | None = None,
        names: list[str] | None = None,
        grace_period: float = 0.0,
    ) -> list[str]:
        """Delete pods (grace_period 0 = SIGKILL). Returns the names killed."""

    @abstractmethod
    def replicas(self, deployment: str | None = None) -> Replicas:
        """Spec and ready replicas of the model Deployment (or the one named)."""

    @abstractmethod
    def scale(self, replicas: int, deployment: str | None = None) -> None:
        """Set the Deployment's spec replicas."""

    @abstractmethod
    def events(self, since: float = 0.0) -> list[Event]:
        """Pod lifecycle, scaling and autoscaler events since an epoch time, oldest first."""

    @abstractmethod
    def scaled_object(self) -> dict[str, Any]:
        """The ScaledObject as deployed (spec and status conditions), as a plain dict."""

    @property
    def deployment_name(self) -> str:
        return "modelserver"

    def snapshot(self, t: float | None = None) -> list[TimelineRow]:
        """The pods' readiness and the replicas now, as timeline rows: sample it during a run
        (`loadgate.observe.timeline.TimelineCollector`) where the platform keeps no history."""
        now = time.time() if t is None else t
        return snapshot_rows(now, self.name, self.pods(), self.deployment_name, self.replicas())

    def timeline(self, since: float = 0.0) -> list[TimelineRow]:
        """The platform's own record since an epoch time: its events as rows (a platform that
        keeps more, like the twin's log of readiness and replicas, returns that)."""
        return [event_row(e, self.name) for e in self.events(since)]

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. Does not stop the stack."""
