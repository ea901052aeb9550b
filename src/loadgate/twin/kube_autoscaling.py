"""The twin's emulated KEDA + HPA as Kubernetes objects: the ScaledObject (`keda.sh/v1alpha1`,
status conditions Ready / Active / Fallback / Paused as KEDA writes them) and the HPA KEDA creates
(`autoscaling/v2` `keda-hpa-<name>`: replicas, the external metric, conditions AbleToScale /
ScalingActive / ScalingLimited as the HPA controller writes them). Pure functions over the
autoscaler's last decisions (`loadgate.twin.autoscaler.Decision`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from loadgate.twin.autoscaler import Decision
from loadgate.twin.kube_objects import Workload, timestamp, uid
from loadgate.twin.spec import AutoscalerSpec, ScalingRules

METRIC = "s0-prometheus"  # KEDA's name for the first trigger's external metric
SO_LABEL = "scaledobject.keda.sh/name"


@dataclass(frozen=True)
class AutoscalerState:
    spec: AutoscalerSpec
    manifest: dict[str, Any]  # the ScaledObject as written
    target: Workload  # the Deployment it scales
    hpa: Decision | None  # the HPA's last decision (actor "hpa")
    keda: Decision | None  # KEDA's last decision (actor "keda")
    error: str | None  # the last poll's error (query failed)
    failures: int  # consecutive failed polls
    last_active: float | None  # epoch s the trigger was last active
    last_scale: float | None  # epoch s of the last SuccessfulRescale

    @property
    def hpa_name(self) -> str:
        return f"keda-hpa-{self.spec.name}"

    @property
    def latest(self) -> Decision | None:
        known = [d for d in (self.hpa, self.keda) if d is not None]
        return max(known, key=lambda d: d.time) if known else None

    @property
    def failing(self) -> bool:
        """The trigger fails (a query error, or an empty result KEDA may not ignore); waiting
        for Prometheus' first sample is not a failure."""
        return self.failures > 0


def quantity(x: float) -> str:
    """A resource.Quantity as the API prints it: whole numbers plain, else milli-units."""
    if x == int(x):
        return str(int(x))
    return f"{math.ceil(x * 1000)}m"


def _cond(type_: str, status: str, reason: str | None = None, message: str | None = None):
    return {"type": type_, "status": status, "reason": reason, "message": message}


def scaled_object(a: AutoscalerState, created: float) -> dict[str, Any]:
    """The ScaledObject as KEDA reports it (a custom object: plain JSON, no client model)."""
    w, s = a.target, a.spec
    body = {k: v for k, v in a.manifest.items() if k not in ("metadata", "status")}
    meta = dict(a.manifest.get("metadata") or {})
    meta.update(
        namespace=w.namespace, uid=uid(w.seed, "ScaledObject", w.namespace, s.name),
        generation=1, creationTimestamp=timestamp(created).isoformat(),
        finalizers=["finalizer.keda.sh"], labels={**(meta.get("labels") or {}), SO_LABEL: s.name},
    )  # fmt: skip
    last = a.latest
    ready = (
        _cond("Ready", "False", "TriggerError",
              "Triggers defined in ScaledObject are not working correctly")
        if a.failing
        else _cond("Ready", "True", "ScaledObjectReady",
                   "ScaledObject is defined correctly and is ready for scaling")
    )  # fmt: skip
    if last is None or last.metric_value is None:
        active = _cond("Active", "Unknown", "UnknownState", "ScaledObject check failed")
    elif last.metric_value > s.activation_threshold:
        active = _cond(
            "Active", "True", "ScalerActive", "Scaling is performed because triggers are active"
        )
    else:
        active = _cond(
            "Active", "False", "ScalerNotActive",
            "Scaling is not performed because triggers are not active",
        )  # fmt: skip
    status = {
        "scaleTargetKind": "apps/v1.Deployment",
        "scaleTargetGVKR": {
            "group": "apps", "version": "v1", "kind": "Deployment", "resource": "deployments",
        },
        "originalReplicaCount": w.manifest.spec.replicas,
        "lastActiveTime": timestamp(a.last_active).isoformat() if a.last_active else None,
        "hpaName": a.hpa_name,
        "externalMetricNames": [METRIC],
        "health": {
            METRIC: {"numberOfFailures": a.failures, "status": "Failure" if a.failing else "Happy"}
        },
        "conditions": [
            ready, active,
            _cond("Fallback", "False", "NoFallbackFound",
                  "No fallbacks are active on this scaled object"),
            _cond("Paused", "Unknown"),
        ],
    }  # fmt: skip
    return {**body, "metadata": meta, "status": _drop_none(status)}


def _drop_none(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _drop_none(v) for k, v in d.items() if v is not None}
    if isinstance(d, list):
        return [_drop_none(v) for v in d]
    return d


def _rules(r: ScalingRules) -> client.V2HPAScalingRules:
    return client.V2HPAScalingRules(
        stabilization_window_seconds=int(r.stabilization_window_s),
        select_policy=r.select_policy,
        policies=[
            client.V2HPAScalingPolicy(type=p.type, value=p.value, period_seconds=int(p.period_s))
            for p in r.policies
        ],
    )


def _hpa_conditions(a: AutoscalerState) -> list[client.V2HorizontalPodAutoscalerCondition]:
    cond = client.V2HorizontalPodAutoscalerCondition
    d = a.hpa
    if d is None:
        return [
            cond(type="AbleToScale", status="True", reason="SucceededGetScale",
                 message="the HPA controller was able to get the target's current scale")
        ]  # fmt: skip
    if d.reason == "ScaleUpStabilized":
        able = ("ScaleUpStabilized", "recent recommendations were lower than current one, "
                "applying the lowest recent recommendation")  # fmt: skip
    elif d.reason == "ScaleDownStabilized":
        able = ("ScaleDownStabilized", "recent recommendations were higher than current one, "
                "applying the highest recent recommendation")  # fmt: skip
    elif d.changed:
        able = (
            "SucceededRescale",
            f"the HPA controller was able to update the target scale to {d.applied}",
        )
    else:
        able = ("ReadyForNewScale", "recommended size matches current size")
    metric = f"external metric {METRIC}(&LabelSelector{{MatchLabels:map[string]string{{{SO_LABEL}: {a.spec.name},}},MatchExpressions:[]LabelSelectorRequirement{{}},}})"
    if d.reason == "scaling_disabled":
        active = (
            "False",
            "ScalingDisabled",
            "scaling is disabled since the replica count of the target is zero",
        )
    elif a.failing:
        why = a.error or d.message
        active = ("False", "FailedGetExternalMetric",
                  f"the HPA was unable to compute the replica count: unable to get {metric}: {why}")  # fmt: skip
    else:
        active = ("True", "ValidMetricFound",
                  f"the HPA was able to successfully calculate a replica count from {metric}")  # fmt: skip
    limits = {
        "TooManyReplicas": "the desired replica count is more than the maximum replica count",
        "above_max": "the desired replica count is more than the maximum replica count",
        "TooFewReplicas": "the desired replica count is less than the minimum replica count",
        "below_min": "the desired replica count is less than the minimum replica count",
        "ScaleUpLimit": "the desired replica count is increasing faster than the maximum scale rate",
        "ScaleDownLimit": "the desired replica count is decreasing faster than the maximum scale rate",
    }
    reason = {"above_max": "TooManyReplicas", "below_min": "TooFewReplicas"}.get(d.reason, d.reason)
    limited = (
        ("True", reason, limits[d.reason])
        if d.reason in limits
        else ("False", "DesiredWithinRange", "the desired count is within the acceptable range")
    )
    return [
        cond(type="AbleToScale", status="True", reason=able[0], message=able[1]),
        cond(type="ScalingActive", status=active[0], reason=active[1], message=active[2]),
        cond(type="ScalingLimited", status=limited[0], reason=limited[1], message=limited[2]),
    ]


def hpa_object(a: AutoscalerState, created: float) -> client.V2HorizontalPodAutoscaler:
    w, s = a.target, a.spec
    so_uid = uid(w.seed, "ScaledObject", w.namespace, s.name)
    metric = client.V2MetricIdentifier(
        name=METRIC, selector=client.V1LabelSelector(match_labels={SO_LABEL: s.name})
    )
    threshold = quantity(s.threshold)
    target = (
        client.V2MetricTarget(type="AverageValue", average_value=threshold)
        if s.metric_type == "AverageValue"
        else client.V2MetricTarget(type="Value", value=threshold)
    )
    current = len(w.live)
    value = a.hpa.metric_value if a.hpa is not None else None
    current_metrics = None
    if value is not None and current > 0:
        observed = (
            client.V2MetricValueStatus(average_value=quantity(value / current))
            if s.metric_type == "AverageValue"
            else client.V2MetricValueStatus(value=quantity(value))
        )
        current_metrics = [
            client.V2MetricStatus(
                type="External",
                external=client.V2ExternalMetricStatus(metric=metric, current=observed),
            )
        ]
    return client.V2HorizontalPodAutoscaler(
        api_version="autoscaling/v2", kind="HorizontalPodAutoscaler",
        metadata=client.V1ObjectMeta(
            name=a.hpa_name, namespace=w.namespace,
            uid=uid(w.seed, "HorizontalPodAutoscaler", w.namespace, a.hpa_name),
            creation_timestamp=timestamp(created),
            labels={
                "app.kubernetes.io/managed-by": "keda-operator",
                "app.kubernetes.io/name": a.hpa_name, "app.kubernetes.io/part-of": s.name,
                SO_LABEL: s.name,
            },
            owner_references=[
                client.V1OwnerReference(
                    api_version="keda.sh/v1alpha1", kind="ScaledObject", name=s.name,
                    uid=so_uid, controller=True, block_owner_deletion=True,
                )
            ],
        ),
        spec=client.V2HorizontalPodAutoscalerSpec(
            scale_target_ref=client.V2CrossVersionObjectReference(
                api_version="apps/v1", kind="Deployment", name=w.name
            ),
            min_replicas=max(s.min_replicas, 1), max_replicas=s.max_replicas,
            metrics=[
                client.V2MetricSpec(
                    type="External",
                    external=client.V2ExternalMetricSource(metric=metric, target=target),
                )
            ],
            behavior=client.V2HorizontalPodAutoscalerBehavior(
                scale_up=_rules(s.scale_up), scale_down=_rules(s.scale_down)
            ),
        ),
        status=client.V2HorizontalPodAutoscalerStatus(
            current_replicas=current,
            desired_replicas=a.hpa.applied if a.hpa is not None else w.desired,
            last_scale_time=timestamp(a.last_scale), current_metrics=current_metrics,
            conditions=_hpa_conditions(a),
        ),
    )  # fmt: skip
