"""What the deployment is configured to do, read from its manifests: the same facts whether the
stack is the twin or a cluster (the gate judges a cluster against the manifests it was deployed
from, `stack.manifests` in loadgate.yaml).

    facts = deployment_facts(load_twin_spec("fixtures/k8s"))
    facts.batch_size, facts.ready_max_queue, facts.autoscaler_target, facts.max_replicas
"""

from __future__ import annotations

from dataclasses import dataclass

from loadgate.twin.spec import TwinSpec


@dataclass(frozen=True)
class DeploymentFacts:
    namespace: str
    deployment: str  # the model Deployment
    replicas: int  # its spec.replicas: the fleet a quiet stack has
    batch_size: int  # sequences decoded at once per pod (MAX_BATCH_SIZE)
    ready_max_queue: int | None  # a pod is not ready above this queue (None: rule off)
    max_requests: int | None  # Envoy's breaker (None: lifted)
    probe_s: float  # how soon a not-ready pod can be noticed (Envoy health check, else probe)
    cluster_name: str  # Envoy's model cluster (envoy_cluster_name)
    lb_policy: str
    autoscaler_target: float | None  # in flight per pod the ScaledObject aims at (None: off)
    min_replicas: int | None
    max_replicas: int | None
    time_scale: float = 1.0  # simulated durations x this (the twin; 1 on a cluster)
    # the emulated autoscaler's poll interval, real seconds (the twin keeps this time itself)
    autoscaler_poll_s: float | None = None

    def describe(self) -> str:
        return ", ".join(
            [
                f"{self.replicas} pods",
                self.lb_policy,
                f"max_requests {self.max_requests or 'none'}",
                f"readiness queue > {self.ready_max_queue or 'off'}",
                "autoscaler " + ("off" if self.autoscaler_target is None else "on"),
                f"time_scale {self.time_scale:g}",
            ]
        )


def deployment_facts(spec: TwinSpec, cluster: bool = False) -> DeploymentFacts:
    """The facts of a manifest set (a TwinSpec): as the twin runs them, or (`cluster`) as a
    real cluster does (real time, its own controllers)."""
    a = spec.autoscaler
    return DeploymentFacts(
        namespace=spec.namespace,
        deployment=spec.deployment,
        replicas=spec.replicas,
        batch_size=spec.max_batch_size,
        ready_max_queue=spec.ready_max_queue,
        max_requests=spec.max_requests,
        probe_s=spec.probe_s,
        cluster_name=spec.cluster_name,
        lb_policy=spec.envoy.lb_policy,
        autoscaler_target=a.threshold if a is not None else None,
        min_replicas=a.min_replicas if a is not None else None,
        max_replicas=a.max_replicas if a is not None else None,
        time_scale=1.0 if cluster else spec.time_scale,
        autoscaler_poll_s=None
        if cluster or a is None
        else min(a.polling_interval_s, a.hpa_sync_period_s) * spec.time_scale,
    )
