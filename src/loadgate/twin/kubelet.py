"""The kubelet's readiness probe, as the twin runs it for each pod: the `readinessProbe` of the
model container (modelserver.yaml), with its period, timeout and thresholds as Kubernetes
applies them.

A pod starts not ready; after `initialDelaySeconds` it is probed every `periodSeconds`;
`successThreshold` consecutive successes make it Ready, `failureThreshold` consecutive failures
NotReady. The probe times are real seconds, as Envoy's health-check interval is: both are HTTP
checks against a real endpoint, not simulated work (docs/twin.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from loadgate.config import StrictModel


class ProbeSpec(StrictModel):
    """A container's readinessProbe (httpGet), with Kubernetes' defaults."""

    path: str = "/v2/health/ready"
    initial_delay_s: float = 0.0
    period_s: float = 10.0
    timeout_s: float = 1.0
    failure_threshold: int = 3
    success_threshold: int = 1


@dataclass
class ProbeState:
    """One pod's probe record. `observe` takes a probe result and says whether readiness changed."""

    spec: ProbeSpec
    started: float  # when the container started (monotonic s)
    ready: bool = False
    successes: int = 0
    failures: int = 0
    next_at: float = 0.0

    def __post_init__(self) -> None:
        self.next_at = self.started + self.spec.initial_delay_s

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def observe(self, ok: bool, now: float) -> bool | None:
        """Record a probe done at `now`; returns the new readiness when it changed, else None."""
        self.next_at = now + self.spec.period_s
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            if not self.ready and self.successes >= self.spec.success_threshold:
                self.ready = True
                return True
        else:
            self.failures, self.successes = self.failures + 1, 0
            if self.ready and self.failures >= self.spec.failure_threshold:
                self.ready = False
                return False
        return None
