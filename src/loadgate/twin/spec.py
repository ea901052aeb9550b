"""TwinSpec: everything the twin needs to boot, derived from fixtures/k8s (manifests.py) and then
overridden by flags. It is the boundary between reading manifests and running processes.

Durations are in *simulated* seconds as written in the manifests; the twin multiplies each by
`time_scale` (0.1 = ten times faster) when it runs them. Prometheus' 1 s scrape is real time.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from loadgate.config import StrictModel
from loadgate.twin.kubelet import ProbeSpec


class ScalingPolicy(StrictModel):
    type: Literal["Pods", "Percent"]
    value: int = Field(ge=1)
    period_s: float = Field(gt=0)


class ScalingRules(StrictModel):
    """One direction of HPA `behavior` (scaleUp or scaleDown)."""

    stabilization_window_s: float = Field(ge=0)
    select_policy: Literal["Max", "Min", "Disabled"] = "Max"
    policies: list[ScalingPolicy]


class AutoscalerSpec(StrictModel):
    """The ScaledObject (KEDA) and the HPA it creates, as the emulated autoscaler applies them."""

    name: str  # ScaledObject name; the HPA is keda-hpa-<name>
    min_replicas: int = Field(ge=0)
    max_replicas: int = Field(ge=1)
    polling_interval_s: float = Field(gt=0)  # KEDA pollingInterval
    cooldown_period_s: float = Field(ge=0)  # KEDA cooldownPeriod (only N -> 0)
    hpa_sync_period_s: float = (
        15.0  # kube-controller-manager --horizontal-pod-autoscaler-sync-period
    )
    tolerance: float = 0.1
    query: str  # PromQL, run verbatim against the twin's Prometheus
    threshold: float = Field(gt=0)
    activation_threshold: float = 0.0
    metric_type: Literal["AverageValue", "Value"] = "AverageValue"
    ignore_null_values: bool = True
    scale_up: ScalingRules
    scale_down: ScalingRules


class EnvoyFacts(StrictModel):
    """What the model cluster of the bootstrap says, read back from it (never set on its own:
    `loadgate.twin.manifests.envoy_facts` derives it from `TwinSpec.envoy_bootstrap`)."""

    cluster_name: str  # the envoy_cluster_name label of Envoy's series
    lb_policy: str  # Envoy's lb_policy, lower case: least_request, round_robin, ...
    max_requests: int  # the DEFAULT priority breaker (Envoy's default 1024 when absent)
    max_pending_requests: int
    max_requests_per_connection: int | None = None
    retry_on: list[str] = []
    num_retries: int = 0
    served_by_header: str | None = None  # the response header carrying %UPSTREAM_HOST%
    health_check_interval_s: float | None = None  # Envoy's active health check (real time)
    panic_threshold: float = 50.0  # percent (Envoy's default when absent)


class KubeObjects(StrictModel):
    """The manifests of the objects the twin's emulated Kubernetes API serves (`--kube-api`),
    as written (schema-checked by `load_twin_spec`); the API adds metadata and live status."""

    model_deployment: dict[str, Any]
    envoy_deployment: dict[str, Any] | None = None  # the Deployment mounting Envoy's ConfigMap
    scaled_object: dict[str, Any] | None = None


class TwinSpec(StrictModel):
    namespace: str = "default"
    deployment: str  # model-server Deployment name; pods are <deployment>-<hash>-<suffix>
    replicas: int = Field(ge=0)
    # The Envoy bootstrap as shipped (ConfigMap key envoy.yaml), after overrides; the twin's
    # Envoy runs it through `envoy_bootstrap.twin_bootstrap` and nothing else.
    envoy_bootstrap: dict[str, Any]
    envoy: EnvoyFacts
    ready_max_queue: int | None = Field(default=50, ge=1)  # None = readiness rule off
    ready_resume_queue: int = Field(default=25, ge=0)
    # The model container's readinessProbe (None: ready once started, as Kubernetes does).
    readiness_probe: ProbeSpec | None = None
    max_batch_size: int = Field(default=8, ge=1)
    # Tokens per stream message after the first (the first token is always sent alone, so time to
    # first token stays exact). Real Triton sends one message per token; chunking bounds the
    # message rate so the twin's 2 cores simulate 150 concurrent streams at a small time_scale
    # without the proxy, pods or generator becoming the bottleneck.
    token_chunk: int = Field(default=8, ge=1)
    modelserver_args: list[str] = []  # extra flags for loadgate-modelserver
    restart_delay_s: float = Field(default=2.0, ge=0)  # Deployment controller re-creating a pod
    time_scale: float = Field(default=1.0, gt=0)
    autoscaler: AutoscalerSpec | None = None  # None = autoscaler off
    kube_objects: KubeObjects | None = None  # None: no manifests to serve (spec built by hand)

    @property
    def cluster_name(self) -> str:
        return self.envoy.cluster_name

    @property
    def max_requests(self) -> int | None:
        """The breaker's in-flight limit; None when it is lifted (a broken twin)."""
        from loadgate.twin.envoy_bootstrap import NO_LIMIT

        return None if self.envoy.max_requests >= NO_LIMIT else self.envoy.max_requests

    @property
    def probe_s(self) -> float:
        """How soon the stack can notice a not-ready pod: Envoy's health check, else the
        kubelet's probe period."""
        if self.envoy.health_check_interval_s:
            return self.envoy.health_check_interval_s
        return self.readiness_probe.period_s if self.readiness_probe else 1.0
