"""Rules on scaling and readiness: the parts exist, the KEDA query sums in-flight requests,
maxReplicaCount caps the fleet, the readiness limit sits above the per-pod target.
"""

from __future__ import annotations

import re
from typing import Any

from loadgate.lint import promql
from loadgate.lint.documents import Manifests
from loadgate.lint.findings import Finding
from loadgate.lint.registry import finding as _f
from loadgate.lint.registry import rule
from loadgate.lint.stack import Stack, model_container

PER_POD_TARGET = 16.0  # 8 executing (max batch) + 8 queued, when no ScaledObject says otherwise


def _trigger(st: Stack) -> tuple[int, dict[str, Any]] | None:
    if st.scaled_object is None:
        return None
    for i, t in enumerate((st.scaled_object.obj.get("spec") or {}).get("triggers") or []):
        if t.get("type") == "prometheus":
            return i, t
    return None


def _target(st: Stack) -> float:
    found = _trigger(st)
    try:
        return float((found[1].get("metadata") or {}).get("threshold")) if found else PER_POD_TARGET
    except (TypeError, ValueError):
        return PER_POD_TARGET


@rule(
    "architecture-parts",
    "the manifests contain Envoy's bootstrap, the model Deployment, a ScaledObject",
)
def parts(st: Stack, m: Manifests) -> list[Finding]:
    out = []
    d = m.directory
    if st.envoy is None and not any(f.rule == "envoy-schema" for f in m.findings):
        out.append(
            _f(
                "architecture-parts",
                "error",
                d,
                "",
                "no ConfigMap with an Envoy bootstrap (data envoy.yaml)",
                "add the Envoy ConfigMap the proxy Deployment mounts",
            )
        )
    elif st.envoy is not None and st.envoy.cluster is None:
        out.append(
            _f(
                "architecture-parts",
                "error",
                st.envoy.doc,
                f"{st.envoy.prefix}.static_resources",
                "no route leads to a cluster defined in static_resources.clusters",
                "route the listener to the model-server cluster",
            )
        )
    if st.deployment is None:
        out.append(
            _f(
                "architecture-parts",
                "error",
                d,
                "",
                "no model-server Deployment (the ScaledObject's scaleTargetRef, or one with a readiness probe)",
                "add the model Deployment or fix scaleTargetRef.name",
            )
        )
    if st.scaled_object is None:
        out.append(
            _f(
                "architecture-parts",
                "warning",
                d,
                "",
                "no KEDA ScaledObject: the model Deployment never scales",
                "add a ScaledObject with a prometheus trigger on requests in flight",
            )
        )
    return out


@rule(
    "keda-query-aggregation",
    "the KEDA query sums in-flight requests (AverageValue divides by pods itself)",
)
def query_aggregation(st: Stack, m: Manifests) -> list[Finding]:
    so = st.scaled_object
    found = _trigger(st)
    if so is None or found is None:
        return []
    i, trig = found
    query = str((trig.get("metadata") or {}).get("query", ""))
    path = f"spec.triggers[{i}].metadata.query"
    metric_type = trig.get("metricType", "AverageValue")
    per_pod = promql.per_pod(query)
    out = []
    if metric_type == "AverageValue" and per_pod:
        out.append(
            _f(
                "keda-query-aggregation",
                "error",
                so,
                path,
                f"metricType AverageValue already divides the query by the replica count, and the query divides by pods too ('{per_pod}'): the load is divided twice and the fleet under-scales",
                'sum over the cluster, e.g. sum(envoy_cluster_upstream_rq_active{envoy_cluster_name="<cluster>"}), or set metricType: Value',
            )
        )
    elif metric_type == "AverageValue" and not promql.sums(query):
        out.append(
            _f(
                "keda-query-aggregation",
                "warning",
                so,
                path,
                "the query is not a sum(): KEDA needs exactly one element, and with several Envoy replicas this returns one per replica",
                "wrap the query in sum(...)",
            )
        )
    elif metric_type == "Value" and not per_pod:
        out.append(
            _f(
                "keda-query-aggregation",
                "error",
                so,
                path,
                "metricType Value computes desired = ceil(replicas x value / threshold): a fleet-wide total here grows with the replicas and scales away",
                "use metricType: AverageValue with the summed query",
            )
        )
    if not promql.in_flight_metric(query):
        out.append(
            _f(
                "keda-query-aggregation",
                "warning",
                so,
                path,
                f"the query reads none of {', '.join(promql.IN_FLIGHT_METRICS)}: the architecture scales on requests in flight",
                "scale on envoy_cluster_upstream_rq_active of the model cluster",
            )
        )
    return out


@rule("keda-max-replicas", "maxReplicaCount caps the cost and targets the model Deployment")
def max_replicas(st: Stack, m: Manifests) -> list[Finding]:
    so = st.scaled_object
    if so is None:
        return []
    spec = so.obj.get("spec") or {}
    out = []
    if "maxReplicaCount" not in spec:
        out.append(
            _f(
                "keda-max-replicas",
                "error",
                so,
                "spec.maxReplicaCount",
                "maxReplicaCount is not set: KEDA defaults to 100 replicas, so a flood or a broken query can scale the fleet (and the bill) to 100 pods",
                "set maxReplicaCount to the largest fleet you are willing to pay for",
            )
        )
    elif (
        isinstance(spec.get("maxReplicaCount"), int)
        and spec.get("minReplicaCount", 0) > spec["maxReplicaCount"]
    ):
        out.append(
            _f(
                "keda-max-replicas",
                "error",
                so,
                "spec.minReplicaCount",
                f"minReplicaCount {spec.get('minReplicaCount')} exceeds maxReplicaCount {spec['maxReplicaCount']}",
                "make minReplicaCount <= maxReplicaCount",
            )
        )
    target = (spec.get("scaleTargetRef") or {}).get("name")
    if target and not any(d.name == target for d in m.of_kind("Deployment")):
        out.append(
            _f(
                "keda-max-replicas",
                "error",
                so,
                "spec.scaleTargetRef.name",
                f"targets Deployment '{target}', which these manifests do not define",
                "name the model-server Deployment",
            )
        )
    return out


_FLAG = re.compile(r"^--ready-max-queue=(.+)$")


def _readiness_limit(c: dict[str, Any], ci: int) -> tuple[str, float] | None:
    """(key path, value) of the container's readiness queue limit: env READY_MAX_QUEUE or flag."""
    env = {e.get("name"): (k, e.get("value")) for k, e in enumerate(c.get("env") or [])}
    base = f"spec.template.spec.containers[{ci}]"
    for k, arg in enumerate(c.get("args") or []):
        m = _FLAG.match(str(arg))
        if m and not m.group(1).startswith("$("):
            return f"{base}.args[{k}]", float(m.group(1))
    if "READY_MAX_QUEUE" in env:
        k, v = env["READY_MAX_QUEUE"]
        try:
            return f"{base}.env[{k}].value", float(v)
        except (TypeError, ValueError):
            return None
    return None


@rule(
    "readiness-above-target", "the readiness queue limit lies above the per-pod autoscaling target"
)
def readiness(st: Stack, m: Manifests) -> list[Finding]:
    dep = st.deployment
    found = model_container(dep) if dep else None
    if dep is None or found is None:
        return []
    ci, c = found
    base = f"spec.template.spec.containers[{ci}]"
    if "readinessProbe" not in c:
        return [
            _f(
                "readiness-above-target",
                "error",
                dep,
                base,
                "the model container has no readinessProbe: an overloaded pod never leaves rotation",
                "add a readinessProbe on /v2/health/ready (periodSeconds: 1, failureThreshold: 1)",
            )
        ]
    limit = _readiness_limit(c, ci)
    if limit is None:
        return [
            _f(
                "readiness-above-target",
                "warning",
                dep,
                f"{base}.env",
                "no readiness queue limit found (env READY_MAX_QUEUE or --ready-max-queue)",
                "set READY_MAX_QUEUE (the architecture uses 50)",
            )
        ]
    path, value = limit
    target = _target(st)
    if value > target:
        return []
    return [
        _f(
            "readiness-above-target",
            "error",
            dep,
            path,
            f"readiness queue limit {value:g} is not above the per-pod target {target:g}: pods leave rotation before the autoscaler sees the load that would add pods, so the stack sheds instead of scaling",
            f"raise the limit above {target:g} (the architecture uses 50) or lower the ScaledObject threshold",
        )
    ]
