"""The KEDA ScaledObject manifest -> AutoscalerSpec, with KEDA's and the HPA's documented defaults.

The models are strict: a misspelt key is an error that names it. KEDA features the twin does not
emulate (fallback, idleReplicaCount, scalingModifiers, several triggers, non-Prometheus
triggers) are refused with a clear error rather than silently ignored, so a local verdict never
rests on a feature the twin skipped.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from loadgate.config import StrictModel, describe_validation_error
from loadgate.errors import UserError
from loadgate.twin.spec import AutoscalerSpec, ScalingPolicy, ScalingRules

# Kubernetes HPA defaults (autoscaling/v2 behavior), used when `behavior` or a part is absent.
DEFAULT_SCALE_UP = ScalingRules(
    stabilization_window_s=0,
    select_policy="Max",
    policies=[
        ScalingPolicy(type="Percent", value=100, period_s=15),
        ScalingPolicy(type="Pods", value=4, period_s=15),
    ],
)
DEFAULT_SCALE_DOWN = ScalingRules(
    stabilization_window_s=300,
    select_policy="Max",
    policies=[ScalingPolicy(type="Percent", value=100, period_s=15)],
)
# KEDA ScaledObject defaults.
DEFAULT_POLLING_INTERVAL = 30
DEFAULT_COOLDOWN_PERIOD = 300
DEFAULT_MIN_REPLICAS = 0
DEFAULT_MAX_REPLICAS = 100


class HPAScalingPolicy(StrictModel):
    type: Literal["Pods", "Percent"]
    value: int = Field(ge=1)
    periodSeconds: int = Field(ge=1, le=1800)


class HPAScalingRules(StrictModel):
    stabilizationWindowSeconds: int | None = Field(default=None, ge=0, le=3600)
    selectPolicy: Literal["Max", "Min", "Disabled"] | None = None
    policies: list[HPAScalingPolicy] | None = None
    tolerance: str | float | None = None  # Kubernetes 1.33+ (alpha): per-direction tolerance


class HPABehavior(StrictModel):
    scaleUp: HPAScalingRules | None = None
    scaleDown: HPAScalingRules | None = None


class HPAConfig(StrictModel):
    name: str | None = None
    behavior: HPABehavior | None = None


class Advanced(StrictModel):
    restoreToOriginalReplicaCount: bool = False
    horizontalPodAutoscalerConfig: HPAConfig | None = None
    scalingModifiers: dict[str, Any] | None = None


class ScaleTargetRef(StrictModel):
    name: str
    apiVersion: str = "apps/v1"
    kind: str = "Deployment"
    envSourceContainerName: str | None = None


class PrometheusMetadata(StrictModel):
    """Trigger metadata of KEDA's prometheus scaler (all values are strings in the manifest)."""

    serverAddress: str
    query: str
    threshold: str
    activationThreshold: str = "0"
    ignoreNullValues: str = "true"
    namespace: str | None = None
    customHeaders: str | None = None
    queryParameters: str | None = None
    unsafeSsl: str | None = None
    timeout: str | None = None
    authModes: str | None = None

    @field_validator("threshold", "activationThreshold", mode="before")
    @classmethod
    def _number(cls, v: Any) -> str:
        # KEDA reads these with strconv.ParseFloat; a YAML number instead of a string is accepted
        # by the twin for convenience but the value must parse.
        text = str(v).strip()
        try:
            x = float(text)
        except ValueError:
            raise ValueError('expected a number in a string, e.g. "16"') from None
        if not math.isfinite(x):
            raise ValueError("expected a finite number")
        return text

    @field_validator("ignoreNullValues", mode="before")
    @classmethod
    def _bool(cls, v: Any) -> str:
        text = str(v).strip()
        if text not in _GO_BOOLS:
            raise ValueError("expected true or false")
        return text


_GO_BOOLS = {
    "1": True,
    "t": True,
    "T": True,
    "TRUE": True,
    "true": True,
    "True": True,
    "0": False,
    "f": False,
    "F": False,
    "FALSE": False,
    "false": False,
    "False": False,
}


class Trigger(StrictModel):
    type: str
    name: str | None = None
    metricType: Literal["AverageValue", "Value", "Utilization"] = "AverageValue"
    useCachedMetrics: bool = False
    authenticationRef: dict[str, Any] | None = None
    metadata: dict[str, Any]


class ScaledObjectSpec(StrictModel):
    scaleTargetRef: ScaleTargetRef
    pollingInterval: int = Field(default=DEFAULT_POLLING_INTERVAL, ge=1)
    cooldownPeriod: int = Field(default=DEFAULT_COOLDOWN_PERIOD, ge=0)
    initialCooldownPeriod: int = Field(default=0, ge=0)
    idleReplicaCount: int | None = None
    minReplicaCount: int = Field(default=DEFAULT_MIN_REPLICAS, ge=0)
    maxReplicaCount: int = Field(default=DEFAULT_MAX_REPLICAS, ge=1)
    fallback: dict[str, Any] | None = None
    advanced: Advanced | None = None
    triggers: list[Trigger] = Field(min_length=1)


class ObjectMeta(StrictModel):
    name: str
    namespace: str | None = None
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}


class ScaledObject(StrictModel):
    apiVersion: Literal["keda.sh/v1alpha1"]
    kind: Literal["ScaledObject"]
    metadata: ObjectMeta
    spec: ScaledObjectSpec


def _rules(given: HPAScalingRules | None, default: ScalingRules) -> ScalingRules:
    """The HPA fills each missing part of a direction's rules from that direction's default."""
    if given is None:
        return default
    return ScalingRules(
        stabilization_window_s=(
            given.stabilizationWindowSeconds
            if given.stabilizationWindowSeconds is not None
            else default.stabilization_window_s
        ),
        select_policy=given.selectPolicy or default.select_policy,
        policies=(
            [
                ScalingPolicy(type=p.type, value=p.value, period_s=p.periodSeconds)
                for p in given.policies
            ]
            if given.policies
            else default.policies
        ),
    )


def autoscaler_spec(so: ScaledObject, source: str) -> AutoscalerSpec:
    """Map a validated ScaledObject to the emulated autoscaler's spec."""
    spec = so.spec
    unsupported = [
        ("spec.fallback", spec.fallback),
        ("spec.idleReplicaCount", spec.idleReplicaCount),
        ("spec.advanced.scalingModifiers", spec.advanced and spec.advanced.scalingModifiers),
    ]
    hpa = spec.advanced.horizontalPodAutoscalerConfig if spec.advanced else None
    behavior = hpa.behavior if hpa else None
    for direction in ("scaleUp", "scaleDown"):
        rules = getattr(behavior, direction) if behavior else None
        key = f"spec.advanced.horizontalPodAutoscalerConfig.behavior.{direction}.tolerance"
        unsupported.append((key, rules and rules.tolerance))
    for key, value in unsupported:
        if value is not None:
            raise UserError(f"{source}: {key}: not emulated by the twin; remove it to run locally")
    if len(spec.triggers) != 1:
        raise UserError(
            f"{source}: spec.triggers: the twin emulates exactly one trigger, found {len(spec.triggers)}"
        )
    trig = spec.triggers[0]
    if trig.type != "prometheus":
        raise UserError(
            f"{source}: spec.triggers[0].type: the twin emulates the prometheus scaler, got {trig.type!r}"
        )
    if trig.metricType == "Utilization":
        raise UserError(
            f"{source}: spec.triggers[0].metricType: Utilization is for cpu/memory triggers"
        )
    try:
        meta = PrometheusMetadata.model_validate(trig.metadata)
    except ValidationError as e:
        # one key path: spec.triggers[0].metadata.<key>
        msg = describe_validation_error(e, "\0")
        raise UserError(msg.replace("\0: ", f"{source}: spec.triggers[0].metadata.", 1)) from None
    threshold = float(meta.threshold)
    if threshold <= 0:
        raise UserError(
            f"{source}: spec.triggers[0].metadata.threshold: must be > 0 (got {meta.threshold!r})"
        )
    if spec.minReplicaCount > spec.maxReplicaCount:
        raise UserError(
            f"{source}: spec.minReplicaCount ({spec.minReplicaCount}) exceeds spec.maxReplicaCount "
            f"({spec.maxReplicaCount})"
        )
    return AutoscalerSpec(
        name=so.metadata.name,
        min_replicas=spec.minReplicaCount,
        max_replicas=spec.maxReplicaCount,
        polling_interval_s=spec.pollingInterval,
        cooldown_period_s=spec.cooldownPeriod,
        query=meta.query,
        threshold=threshold,
        activation_threshold=float(meta.activationThreshold),
        metric_type=trig.metricType,
        ignore_null_values=_GO_BOOLS[meta.ignoreNullValues],
        scale_up=_rules(behavior.scaleUp if behavior else None, DEFAULT_SCALE_UP),
        scale_down=_rules(behavior.scaleDown if behavior else None, DEFAULT_SCALE_DOWN),
    )
