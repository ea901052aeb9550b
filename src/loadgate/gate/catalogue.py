"""The one catalogue of gates: every list of gates, every threshold name and every figure's
direction is derived from `GATES`.

Adding a gate is one `GateDef` here, one judge function (`loadgate.judge`), one test file in
loadtests/ (which calls `run.check(<figure>, value)` for each figure) and its `broken` case for
tests/integration/test_gate_sensitivity.py (docs/ARCHITECTURE.md, "Adding a gate").

A figure's threshold key in loadgate.yaml is its name with `_max` (an upper bound, `<=`) or `_min`
(a lower bound, `>=`): the direction is stated once, here. Judge parameters (how a figure is
computed, not what it must reach) live in the gate's `params` model, apart from thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from loadgate.config import StrictModel

Direction = Literal["<=", ">="]
Source = Literal["stack", "client"]


@dataclass(frozen=True)
class Figure:
    name: str
    direction: Direction
    meaning: str  # what the number is, for the verdict message and docs/gate.md
    unit: str = ""
    # Whose record the figure is computed from: the stack's own (Envoy's access log and stats,
    # the platform's pods and replicas) or the client's (what only the client can see).
    source: Source = "stack"
    # Whether the client's own timing shapes the figure (a count of outcomes does not).
    timed: bool = True

    @property
    def threshold_key(self) -> str:
        return f"{self.name}_{'max' if self.direction == '<=' else 'min'}"


# -- judge parameters, per gate ---------------------------------------------------------------


class NoParams(StrictModel):
    pass


class BalanceParams(StrictModel):
    bucket_s: float = Field(1.0, gt=0)  # in-flight is averaged per bucket


class FailFastParams(StrictModel):
    slo_ms: float = Field(1500.0, gt=0)  # short calls' p99 that counts as recovered
    slo_class: str = "llm-short"
    recovery_window_s: float = Field(2.0, gt=0)


class FloodSpec(StrictModel):
    """A bounded burst straight at one pod (readiness gate), as chaos' flood_queue does."""

    requests: int = Field(80, ge=1, le=5000)
    after_s: float = Field(4.0, ge=0)  # after the load starts
    duration_s: float = Field(6.0, gt=0, le=600)
    max_tokens: int = Field(2000, ge=1)
    model: str = "llm"


class ReadinessParams(StrictModel):
    # grace after a pod turns not ready before a call sent to it counts (health check 0.5 s)
    probe_grace_s: float = Field(1.0, ge=0)
    # a call started this close before a recorded return to ready is not counted (readiness is
    # recorded when observed, a little after the proxy saw it)
    return_grace_s: float = Field(0.25, ge=0)
    flood: FloodSpec = Field(default_factory=FloodSpec)


class ScaleUpParams(StrictModel):
    bucket_s: float = Field(1.0, gt=0)


class PodKillParams(StrictModel):
    kill_phase: str = "kill"  # the kill happens at the start of this scenario phase
    # p99 of short calls in windows of window_s, recovered once `hold` windows in a row are
    # within max(factor x baseline, baseline + 50 ms)
    window_s: float = Field(4.0, gt=0)
    factor: float = Field(2.0, ge=1)
    hold: int = Field(2, ge=1)
    first_call_timeout_s: float = Field(120.0, gt=0)  # Locust may start slowly on a busy machine


@dataclass(frozen=True)
class GateDef:
    name: str  # the key under `gates:` in loadgate.yaml and the pytest marker's argument
    test_file: str  # in loadtests/
    test_name: str
    proves: str
    figures: tuple[Figure, ...]
    params: type[StrictModel]
    # Twin overrides that remove the mechanism, and the figures that must catch it.
    broken: tuple[str, ...]
    caught_by: frozenset[str]

    @property
    def thresholds(self) -> dict[str, Figure]:
        """{threshold key in loadgate.yaml: figure}."""
        return {f.threshold_key: f for f in self.figures}

    def figure(self, name: str) -> Figure:
        for f in self.figures:
            if f.name == name:
                return f
        raise KeyError(f"gate {self.name} has no figure {name!r}")


def _f(
    name: str,
    direction: Direction,
    meaning: str,
    unit: str = "",
    source: Source = "stack",
    timed: bool = True,
) -> Figure:
    return Figure(name, direction, meaning, unit, source, timed)


# In run order: scale-up last (it leaves the stack scaled), the rest from the gentlest.
GATES: tuple[GateDef, ...] = (
    GateDef(
        name="balance",
        test_file="test_least_request_balance.py",
        test_name="test_least_request_balance",
        proves="least-request balance: in-flight work stays level across pods",
        figures=(
            _f("buckets", ">=", "1 s buckets with enough load to judge"),
            _f(
                "busiest_pick_share",
                "<=",
                "share of calls sent to the pod with strictly the most in flight at that instant",
            ),
            _f(
                "queued_while_idle",
                "<=",
                "share of time a pod holds a full batch while another is idle",
            ),
            _f("imbalance_mean", "<=", "mean over the window of max/mean in-flight across pods"),
        ),
        params=BalanceParams,
        broken=("lb=round_robin",),
        caught_by=frozenset({"busiest_pick_share"}),
    ),
    GateDef(
        name="readiness",
        test_file="test_readiness_dropout.py",
        test_name="test_readiness_dropout",
        proves="readiness drop-out: a pod over queue 50 leaves rotation and returns",
        figures=(
            _f("drops", ">=", "pods leaving rotation"),
            _f(
                "overloads_not_dropped",
                "<=",
                "queue-over-limit episodes not answered by not-ready in time",
            ),
            _f("calls_to_not_ready", "<=", "calls the proxy started on a not-ready pod"),
            _f("returned", ">=", "pods back in rotation after draining"),
        ),
        params=ReadinessParams,
        broken=("ready_max_queue=0",),
        caught_by=frozenset({"drops", "overloads_not_dropped"}),
    ),
    GateDef(
        name="fail_fast",
        test_file="test_fail_fast.py",
        test_name="test_fail_fast",
        proves="fail-fast 503 / UNAVAILABLE under a flood, bounded by the breaker",
        figures=(
            _f("rejected_share", ">=", "share of flood calls answered UNAVAILABLE"),
            _f("reject_p99_ms", "<=", "time to a rejection", "ms"),
            # the proxy's record: a call the client gave up on only because it read its answer
            # late shows as answered in time (gRPC OK in Envoy's log), not as a timeout
            _f("deadline_exceeded", "<=", "flood calls that waited into their deadline"),
            _f("accepted_p99_ms", "<=", "admitted calls' latency", "ms"),
            _f(
                "admitted_inflight_peak",
                "<=",
                "admitted calls in flight at once during the flood (the breaker's bound)",
            ),
            _f("recovery_s", "<=", "after the flood until short calls are within the SLO", "s"),
        ),
        params=FailFastParams,
        broken=("max_requests=0",),
        caught_by=frozenset({"admitted_inflight_peak"}),
    ),
    GateDef(
        name="pod_kill",
        test_file="test_pod_kill.py",
        test_name="test_pod_kill",
        proves="a killed pod costs only its own calls, is replaced and serves",
        figures=(
            _f("failed_elsewhere", "<=", "failed calls that were not in flight on the killed pod"),
            _f(
                "accounted",
                ">=",
                "every call ended in exactly one outcome (1 = yes)",
                source="client",
                timed=False,
            ),
            _f("replica_back_s", "<=", "kill -> ready replicas back to the pre-kill count", "s"),
            _f("new_pod_calls", ">=", "OK calls served by the replacement pod"),
            _f(
                "p99_recovery_s",
                "<=",
                "kill -> p99 of short calls back within max(2 x baseline, baseline + 50 ms)",
                "s",
            ),
        ),
        params=PodKillParams,
        # Pods never replaced; the autoscaler off too, or it would add the missing pod back.
        broken=("restart_delay=100000", "no_autoscaler=true"),
        caught_by=frozenset({"replica_back_s", "new_pod_calls"}),
    ),
    GateDef(
        name="scale_up",
        test_file="test_keda_scale_up.py",
        test_name="test_keda_scale_up",
        proves="KEDA scale-up on in-flight requests, never above maxReplicaCount",
        figures=(
            _f("peak_demand", ">=", "ceil(in-flight / target) at its highest"),
            _f("max_ready", ">=", "ready replicas reached"),
            _f(
                "time_to_capacity_s",
                "<=",
                "demand above ready capacity -> enough ready pods",
                "s",
            ),
            _f("above_max", "<=", "ready replicas above maxReplicaCount"),
        ),
        params=ScaleUpParams,
        broken=("no_autoscaler=true",),
        caught_by=frozenset({"max_ready", "time_to_capacity_s"}),
    ),
)

BY_NAME: dict[str, GateDef] = {g.name: g for g in GATES}
ORDER: tuple[str, ...] = tuple(g.name for g in GATES)


def order_key(gate: str) -> tuple[int, str]:
    """Sort key: catalogue order, unknown names last."""
    return (ORDER.index(gate) if gate in ORDER else len(ORDER), gate)


def get(name: str) -> GateDef:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"no gate {name!r} (the catalogue has: {', '.join(ORDER)})") from None
