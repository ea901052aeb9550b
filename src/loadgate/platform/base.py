"""The Platform interface: what the gate, the chaos extension and the CLI may ask of a stack.

Two implementations: `platform/twin.py` (the local twin, over its control API) and
`platform/kubernetes.py` (the official kubernetes client). Keep this interface small and in
Kubernetes terms, so both can honour it exactly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any


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

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. Does not stop the stack."""
