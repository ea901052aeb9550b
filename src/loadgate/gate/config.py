"""loadgate.yaml: which stack the gate runs against, the traffic of each gate, its thresholds
and its judge parameters.

    stack: {kind: twin, manifests: fixtures/k8s, twin: {time_scale: 0.2}}
    classes: [...]                       # traffic classes shared by inline scenarios
    gates:
      balance:
        scenario: loadtests/scenarios/gates/balance.yaml    # a path, or an inline scenario
        thresholds: {imbalance_p95_max: 1.6, ...}           # every figure of the gate
        params: {bucket_s: 1.0}                             # how figures are computed
    kubernetes: {...}                    # KubernetesPlatform.from_config (also read by chaos)

`load_gate_config(path)` validates it all (scenarios included) and raises one UserError line that
names the file and key path. Gate names, threshold keys (`<figure>_max` / `<figure>_min`) and
params come from the catalogue (`loadgate.gate.catalogue`): an unknown or a missing one is an
error before anything boots.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from loadgate.config import StrictModel, describe_validation_error, read_yaml, validate
from loadgate.errors import UserError
from loadgate.gate import catalogue
from loadgate.hostport import HostPort
from loadgate.judge.trust import TrustLimits
from loadgate.traffic.scenario import Scenario, TrafficClass, load_scenario


class TwinOverrides(StrictModel):
    """Same names and meaning as `loadgate twin up` flags (loadgate.twin.manifests.apply_overrides)."""

    lb: Literal["least_request", "round_robin", "random"] | None = None
    replicas: int | None = Field(None, ge=0)
    max_requests: int | None = Field(None, ge=0)  # 0 = no in-flight limit
    health_check_interval: float | None = Field(None, gt=0)  # Envoy's, real seconds
    num_retries: int | None = Field(None, ge=0)
    # the pods pose as this Triton backend, and every gate's LLM classes use its profile
    llm_profile: Literal["loadgate", "vllm", "tensorrtllm"] | None = None
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


class GateSpec(StrictModel):
    scenario: str | dict[str, Any]  # a path (relative to loadgate.yaml's folder) or inline
    window: str | None = None  # the phase the gate is judged on (None: the whole run)
    thresholds: dict[str, float] = Field(default_factory=dict)
    # the gate's params model (catalogue.GateDef.params), validated in GateConfig
    params: dict[str, Any] = Field(default_factory=dict)
    processes: int = Field(1, ge=1, le=16)


class GateConfig(StrictModel):
    stack: Stack = Field(default_factory=Stack)
    target: HostPort | None = None  # the proxy's gRPC address; default: the twin's, or kubernetes'
    classes: list[TrafficClass] = Field(default_factory=list)
    gates: dict[str, GateSpec] = Field(min_length=1)
    report_dir: Path = Path("reports")
    # how far timing may drift before a figure is INVALID (loadgate.judge.trust)
    trust: TrustLimits = Field(default_factory=TrustLimits)
    kubernetes: dict[str, Any] | None = None  # KubernetesPlatform.from_config; chaos reads it too

    @model_validator(mode="after")
    def _consistent(self) -> GateConfig:
        for name, g in self.gates.items():
            if name not in catalogue.BY_NAME:
                raise ValueError(
                    f"gates.{name}: unknown gate (the catalogue has: {', '.join(catalogue.ORDER)})"
                )
            known = catalogue.BY_NAME[name].thresholds
            for key, value in g.thresholds.items():
                if key not in known:
                    raise ValueError(
                        f"gates.{name}.thresholds.{key}: unknown threshold "
                        f"(expected one of {', '.join(known)})"
                    )
                if not (0 <= value < float("inf")):  # every figure is a count, share or time
                    raise ValueError(
                        f"gates.{name}.thresholds.{key}: must be a finite number >= 0, got {value}"
                    )
            missing = [k for k in known if k not in g.thresholds]
            if missing:
                raise ValueError(
                    f"gates.{name}.thresholds: {', '.join(missing)} not set (every figure of a "
                    "gate needs its threshold)"
                )
        if self.stack.kind == "kubernetes" and self.kubernetes is None:
            raise ValueError("stack.kind kubernetes needs a top-level 'kubernetes:' block")
        return self


def gate_params(cfg: GateConfig, gate: str, source: str) -> StrictModel:
    """The gate's judge parameters as its typed model (defaults for what is not written)."""
    model = catalogue.get(gate).params
    try:
        return model.model_validate(cfg.gates[gate].params)
    except ValidationError as e:
        raise UserError(describe_validation_error(e, source, ("gates", gate, "params"))) from None


def resolve_scenario(cfg: GateConfig, gate: str, base: Path, source: str) -> Scenario:
    """The gate's Scenario: from its file, or inline with class names taken from `classes:`."""
    spec = cfg.gates[gate]
    if isinstance(spec.scenario, str):
        path = Path(spec.scenario)
        try:
            return load_scenario(path if path.is_absolute() else base / path)
        except UserError as e:  # name the key that points at the file, then the file's own words
            raise UserError(f"{source}: gates.{gate}.scenario: {e}") from None
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
    data = read_yaml(p)
    if data is None:
        raise UserError(f"{p}: empty file (expected gates:, stack:, ...)")
    cfg = validate(GateConfig, data, str(p))
    base = p.resolve().parent
    for g in cfg.gates:
        gate_params(cfg, g, str(p))  # a bad parameter is one line now, before anything boots
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


def with_stack_kind(
    cfg: GateConfig, kind: str | None, source: str | Path = "loadgate.yaml"
) -> GateConfig:
    """`--stack twin|kubernetes` over the config's stack.kind, checked like the file itself."""
    if not kind or kind == cfg.stack.kind:
        return cfg
    if kind == "kubernetes" and cfg.kubernetes is None:
        raise UserError(
            f"--stack kubernetes: {source} has no top-level 'kubernetes:' block "
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


def prepare(
    path: str | Path, overrides: list[str] | tuple[str, ...], stack: str | None
) -> tuple[GateConfig, dict[str, Scenario]]:
    """What `loadgate gate` and `pytest loadtests` check before anything boots: the config with
    its scenarios, the overrides, the stack kind and the manifests (the deployment's facts on
    both kinds). Every mistake is one UserError line."""
    from loadgate.twin.manifests import load_twin_spec

    cfg, scenarios = load_gate_config(path)
    cfg = with_stack_kind(with_overrides(cfg, overrides), stack, path)
    load_twin_spec(cfg.stack.manifests)
    return cfg, scenarios
