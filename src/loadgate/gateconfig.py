"""loadgate.yaml: which stack the gate runs against, the traffic of each gate, its thresholds.

    stack: {kind: twin, manifests: fixtures/k8s, twin: {time_scale: 0.2}}
    classes: [...]                       # traffic classes shared by inline scenarios
    gates:
      balance:
        scenario: loadtests/scenarios/gates/balance.yaml    # a path, or an inline scenario
        thresholds: {imbalance_p95_max: 1.6}
    kubernetes: {...}                    # KubernetesPlatform.from_config (also read by chaos)

`load_gate_config(path)` validates it all (scenarios included) and raises one UserError line that
names the file and key path. Threshold names end in `_max` / `_min` so the direction is in the
name; the gates this module knows have their threshold names checked, a misspelt one is an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from loadgate.config import StrictModel, read_yaml, validate
from loadgate.errors import UserError
from loadgate.traffic.scenario import Scenario, TrafficClass, load_scenario

# Known gates -> their threshold names (a gate not listed here, e.g. one added later, takes any).
KNOWN_THRESHOLDS: dict[str, frozenset[str]] = {
    "balance": frozenset(
        {"imbalance_p95_max", "imbalance_mean_max", "queued_while_idle_max", "min_buckets_min"}
    ),
    "fail_fast": frozenset(
        {
            "rejected_share_min",
            "reject_p99_ms_max",
            "deadline_exceeded_max",
            "accepted_p99_ms_max",
            "inflight_peak_max",
            "recovery_s_max",
            "slo_ms",
        }
    ),
    "readiness": frozenset(
        {
            "drops_min",
            "calls_to_not_ready_max",
            "overloads_not_dropped_max",
            "returned_min",
            "probe_grace_s",
        }
    ),
    "scale_up": frozenset(
        {"time_to_capacity_s_max", "max_ready_min", "above_max_max", "peak_demand_min"}
    ),
}


class TwinOverrides(StrictModel):
    """Same names and meaning as `loadgate twin up` flags (loadgate.twin.manifests.apply_overrides)."""

    lb: Literal["least_request", "round_robin"] | None = None
    replicas: int | None = Field(None, ge=0)
    max_requests: int | None = Field(None, ge=0)  # 0 = no in-flight limit
    no_autoscaler: bool = False
    ready_max_queue: int | None = Field(None, ge=0)  # 0 = readiness rule off
    restart_delay: float | None = Field(None, ge=0)
    time_scale: float | None = Field(None, gt=0)
    token_chunk: int | None = Field(None, ge=1)
    decode_slowdown: float | None = Field(None, gt=0)  # 1.25 = each decode step 25 % longer


class Stack(StrictModel):
    kind: Literal["twin", "kubernetes"] = "twin"
    manifests: Path = Path("fixtures/k8s")
    twin: TwinOverrides = Field(default_factory=TwinOverrides)
    # Before each gate: wait this long for a quiet stack (nothing in flight, every pod ready, the
    # manifests' replica count); a twin that is not quiet by then is restarted.
    settle_timeout_s: float = Field(20.0, gt=0)


class FloodSpec(StrictModel):
    """A bounded burst straight at one pod (readiness gate), as chaos' flood_queue does."""

    requests: int = Field(80, ge=1, le=5000)
    after_s: float = Field(4.0, ge=0)  # after the load starts
    duration_s: float = Field(6.0, gt=0, le=600)
    max_tokens: int = Field(2000, ge=1)
    model: str = "llm"


class GateSpec(StrictModel):
    scenario: str | dict[str, Any]  # a path (relative to loadgate.yaml's folder) or inline
    window: str | None = None  # the phase the gate is judged on (None: the whole run)
    thresholds: dict[str, float] = Field(default_factory=dict)
    flood: FloodSpec | None = None
    processes: int = Field(1, ge=1, le=16)


class GateConfig(StrictModel):
    stack: Stack = Field(default_factory=Stack)
    target: str | None = None  # host:port of the proxy; default: the twin's, or kubernetes'
    classes: list[TrafficClass] = Field(default_factory=list)
    gates: dict[str, GateSpec] = Field(min_length=1)
    report_dir: Path = Path("reports")
    kubernetes: dict[str, Any] | None = None  # KubernetesPlatform.from_config; chaos reads it too

    @model_validator(mode="after")
    def _consistent(self) -> GateConfig:
        for name, g in self.gates.items():
            known = KNOWN_THRESHOLDS.get(name)
            if known is None:
                continue
            for key in g.thresholds:
                if key not in known:
                    raise ValueError(
                        f"gates.{name}.thresholds.{key}: unknown threshold "
                        f"(expected one of {', '.join(sorted(known))})"
                    )
        if self.stack.kind == "kubernetes" and self.kubernetes is None:
            raise ValueError("stack.kind kubernetes needs a top-level 'kubernetes:' block")
        return self

    def threshold(self, gate: str, key: str) -> float:
        try:
            return self.gates[gate].thresholds[key]
        except KeyError:
            raise UserError(f"loadgate.yaml: gates.{gate}.thresholds.{key} is not set") from None


def resolve_scenario(cfg: GateConfig, gate: str, base: Path, source: str) -> Scenario:
    """The gate's Scenario: from its file, or inline with class names taken from `classes:`."""
    spec = cfg.gates[gate]
    if isinstance(spec.scenario, str):
        path = Path(spec.scenario)
        return load_scenario(path if path.is_absolute() else base / path)
    data = dict(spec.scenario)
    by_name = {c.name: c.model_dump() for c in cfg.classes}
    classes = []
    for i, c in enumerate(data.get("classes") or []):
        if isinstance(c, str):
            if c not in by_name:
                raise UserError(
                    f"{source}: gates.{gate}.scenario.classes[{i}]: no class {c!r} in 'classes:' "
                    f"(have: {', '.join(by_name) or 'none'})"
                )
            classes.append(by_name[c])
        else:
            classes.append(c)
    data["classes"] = classes
    data.setdefault("name", f"gate-{gate}")
    return validate(Scenario, data, f"{source}: gates.{gate}.scenario")


def load_gate_config(path: str | Path) -> tuple[GateConfig, dict[str, Scenario]]:
    """Read loadgate.yaml: the config and every gate's scenario, all validated up front."""
    p = Path(path)
    cfg = validate(GateConfig, read_yaml(p), str(p))
    base = p.resolve().parent
    scenarios = {g: resolve_scenario(cfg, g, base, str(p)) for g in cfg.gates}
    for g, spec in cfg.gates.items():
        phases = [ph.name for ph in scenarios[g].phases]
        if spec.window is not None and spec.window not in phases:
            raise UserError(
                f"{p}: gates.{g}.window: no phase {spec.window!r} in its scenario "
                f"(phases: {', '.join(phases)})"
            )
    if not cfg.stack.manifests.is_absolute():
        cfg.stack.manifests = base / cfg.stack.manifests
    return cfg, scenarios


def parse_overrides(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """`--twin-override lb=round_robin` items -> TwinOverrides fields (validated by the caller)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep and key == "no_autoscaler":
            value = "true"
        elif not sep or not key:
            raise UserError(f"--twin-override {item!r}: expected KEY=VALUE, e.g. lb=round_robin")
        if key not in TwinOverrides.model_fields:
            raise UserError(
                f"--twin-override {key}: unknown (expected one of "
                f"{', '.join(TwinOverrides.model_fields)})"
            )
        out[key] = (
            value.strip().lower() in ("1", "true", "yes", "") if key == "no_autoscaler" else value
        )
    return out


def with_stack_kind(cfg: GateConfig, kind: str | None) -> GateConfig:
    """`--stack twin|kubernetes` over loadgate.yaml's stack.kind, checked like the file itself."""
    if not kind or kind == cfg.stack.kind:
        return cfg
    if kind == "kubernetes" and cfg.kubernetes is None:
        raise UserError(
            "--stack kubernetes: loadgate.yaml has no top-level 'kubernetes:' block "
            "(grpc_target, context, namespace, allowed; see docs/kubernetes.md)"
        )
    return cfg.model_copy(update={"stack": cfg.stack.model_copy(update={"kind": kind})})


def with_overrides(cfg: GateConfig, items: list[str] | tuple[str, ...]) -> GateConfig:
    extra = parse_overrides(items)
    if not extra:
        return cfg
    merged = {**cfg.stack.twin.model_dump(exclude_none=True), **extra}
    twin = validate(TwinOverrides, merged, "--twin-override")
    return cfg.model_copy(update={"stack": cfg.stack.model_copy(update={"twin": twin})})
