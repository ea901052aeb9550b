"""TwinSpec: everything the twin needs to boot, derived from fixtures/k8s (manifests.py) and then
overridden by flags. It is the boundary between reading manifests and running processes.

Durations are in *simulated* seconds as written in the manifests; the twin multiplies each by
`time_scale` (0.1 = ten times faster) when it runs them. Prometheus' 1 s scrape is real time.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from loadgate.config import StrictModel

LbPolicy = Literal["least_request", "round_robin"]


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


class TwinSpec(StrictModel):
    namespace: str = "default"
    deployment: str  # model-server Deployment name; pods are <deployment>-<hash>-<suffix>
    replicas: int = Field(ge=0)
    cluster_name: str  # Envoy cluster name: the envoy_cluster_name label of recorded series
    lb_policy: LbPolicy
    max_requests: int | None = Field(default=None, ge=1)  # breaker: None = no in-flight limit
    max_pending_requests: int | None = Field(default=None, ge=1)
    max_requests_per_connection: int | None = Field(default=None, ge=1)
    retry_on: list[str] = []
    num_retries: int = 0
    served_by_header: str = "x-upstream-host"
    ready_max_queue: int | None = Field(default=50, ge=1)  # None = readiness rule off
    ready_resume_queue: int = Field(default=25, ge=0)
    readiness_period_s: float = Field(default=0.5, gt=0)  # health-check interval (real time)
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
