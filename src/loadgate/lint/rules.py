"""The architecture's rules (DESIGN.md 1, REFERENCE.md): each one a function over the located
stack that returns findings with file, key path and fix. Register a rule with `@rule`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from loadgate.lint import promql
from loadgate.lint.documents import Manifests
from loadgate.lint.findings import Finding, Severity
from loadgate.lint.stack import Envoy, Route, Stack, model_container

RuleFn = Callable[[Stack, Manifests], list[Finding]]
RULES: dict[str, tuple[str, RuleFn]] = {}

PER_POD_TARGET = 16.0  # 8 executing (max batch) + 8 queued, when no ScaledObject says otherwise
MAX_RETRIES_PER_REQUEST = 3
SERVED_BY_HEADER = "x-upstream-host"
# retry_on conditions an overloaded upstream triggers: retrying them multiplies the overload.
OVERLOAD_RETRY_ON = {
    "5xx": "an upstream 503 (an overloaded pod or proxy)",
    "gateway-error": "an upstream 502/503/504",
    "resource-exhausted": "gRPC RESOURCE_EXHAUSTED, the overload status",
}


def rule(rule_id: str, description: str) -> Callable[[RuleFn], RuleFn]:
    def register(fn: RuleFn) -> RuleFn:
        RULES[rule_id] = (description, fn)
        return fn

    return register


def _f(rule_id: str, sev: Severity, file: str, path: str, msg: str, fix: str) -> Finding:
    return Finding(rule_id, sev, file, path, msg, fix)


def _default_threshold(cluster: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    ths = (cluster.get("circuit_breakers") or {}).get("thresholds") or []
    for i, t in enumerate(ths):
        if t.get("priority", "DEFAULT") == "DEFAULT":
            return i, t
    return None


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
                st.envoy.file,
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


@rule("lb-least-request", "the model cluster balances by least request")
def least_request(st: Stack, m: Manifests) -> list[Finding]:
    env = st.envoy
    if env is None or env.cluster is None:
        return []
    policy = env.cluster.get("lb_policy", "ROUND_ROBIN")
    typed = str(env.cluster.get("load_balancing_policy", ""))
    if policy == "LEAST_REQUEST" or "least_request" in typed:
        return []
    shown = policy if "lb_policy" in env.cluster else "ROUND_ROBIN (the default when absent)"
    return [
        _f(
            "lb-least-request",
            "error",
            env.file,
            f"{env.cluster_path}.lb_policy",
            f"model cluster '{env.cluster.get('name')}' uses {shown}: it ignores requests in flight, so long generations pile up on some pods while others idle",
            "set lb_policy: LEAST_REQUEST",
        )
    ]


@rule("breaker-max-requests", "a max_requests circuit breaker bounds requests in flight")
def breaker(st: Stack, m: Manifests) -> list[Finding]:
    env = st.envoy
    if env is None or env.cluster is None:
        return []
    found = _default_threshold(env.cluster)
    if found is None:
        return [
            _f(
                "breaker-max-requests",
                "error",
                env.file,
                f"{env.cluster_path}.circuit_breakers",
                "no DEFAULT circuit-breaker thresholds: Envoy's implicit max_requests of 1024 is far above what the pods hold, so overload queues instead of failing fast",
                "add circuit_breakers.thresholds: [{priority: DEFAULT, max_requests: <pods x (batch + readiness queue limit)>}]",
            )
        ]
    i, th = found
    if "max_requests" in th:
        return []
    also = (
        " (max_pending_requests alone does not bound HTTP/2: it only counts requests waiting for a connection)"
        if "max_pending_requests" in th
        else ""
    )
    return [
        _f(
            "breaker-max-requests",
            "error",
            env.file,
            f"{env.cluster_path}.circuit_breakers.thresholds[{i}]",
            f"no max_requests: gRPC requests in flight are unbounded{also}",
            "add max_requests: <pods x (batch + readiness queue limit)> so overflow fails fast with UNAVAILABLE",
        )
    ]


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
                so.file,
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
                so.file,
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
                so.file,
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
                so.file,
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
                so.file,
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
                so.file,
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
                so.file,
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
                dep.file,
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
                dep.file,
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
            dep.file,
            path,
            f"readiness queue limit {value:g} is not above the per-pod target {target:g}: pods leave rotation before the autoscaler sees the load that would add pods, so the stack sheds instead of scaling",
            f"raise the limit above {target:g} (the architecture uses 50) or lower the ScaledObject threshold",
        )
    ]


def _retry_policies(r: Route) -> list[tuple[str, dict[str, Any]]]:
    out = []
    if isinstance(r.route.get("retry_policy"), dict):
        out.append((f"{r.path}.route.retry_policy", r.route["retry_policy"]))
    if isinstance(r.vhost.get("retry_policy"), dict):
        out.append((f"{r.vhost_path}.retry_policy", r.vhost["retry_policy"]))
    return out


@rule("retry-no-storm", "retries cannot turn overload into a retry storm")
def retries(st: Stack, m: Manifests) -> list[Finding]:
    env = st.envoy
    if env is None or env.cluster is None:
        return []
    out = []
    for r in env.routes:
        for path, pol in _retry_policies(r):
            out += _check_retry_policy(env, path, pol)
    return out + _check_retry_budget(env)


def _check_retry_policy(env: Envoy, path: str, pol: dict[str, Any]) -> list[Finding]:
    out = []
    conds = [c.strip() for c in str(pol.get("retry_on", "")).split(",") if c.strip()]
    codes = [int(c) for c in pol.get("retriable_status_codes") or []]
    for cond in conds:
        why = OVERLOAD_RETRY_ON.get(cond)
        if cond == "retriable-status-codes" and {503, 429} & set(codes):
            why = f"HTTP {sorted({503, 429} & set(codes))}, the overload answers"
        if why:
            out.append(
                _f(
                    "retry-no-storm",
                    "error",
                    env.file,
                    f"{path}.retry_on",
                    f"retry_on '{cond}' retries {why}: every shed request comes back as more load on the same overloaded fleet (Envoy's own breaker overflow is never retried, an upstream's 503 is)",
                    "retry only what never reached a model: unavailable,reset,connect-failure,refused-stream",
                )
            )
    n = int(pol.get("num_retries", 1))
    if n > MAX_RETRIES_PER_REQUEST:
        out.append(
            _f(
                "retry-no-storm",
                "error",
                env.file,
                f"{path}.num_retries",
                f"num_retries {n}: under failure each request becomes up to {n + 1} attempts",
                f"keep num_retries <= {MAX_RETRIES_PER_REQUEST} (the architecture uses 2)",
            )
        )
    predicates = [p.get("name", "") for p in pol.get("retry_host_predicate") or []]
    if conds and n > 0 and not any("previous_hosts" in p for p in predicates):
        out.append(
            _f(
                "retry-no-storm",
                "warning",
                env.file,
                f"{path}.retry_host_predicate",
                "retries may land on the pod that just failed",
                "add retry_host_predicate: [{name: envoy.retry_host_predicates.previous_hosts}]",
            )
        )
    return out


def _check_retry_budget(env: Envoy) -> list[Finding]:
    found = _default_threshold(env.cluster or {})
    if found is None:
        return []
    i, th = found
    if "retry_budget" in th or "max_retries" not in th:
        return []  # a budget scales with load; absent, Envoy's default of 3 concurrent retries holds
    limit = max(3, int(th.get("max_requests", 1024)) // 4)
    if int(th["max_retries"]) <= limit:
        return []
    return [
        _f(
            "retry-no-storm",
            "warning",
            env.file,
            f"{env.cluster_path}.circuit_breakers.thresholds[{i}].max_retries",
            f"max_retries {th['max_retries']} lets retries take more than a quarter of max_requests",
            f"lower max_retries to <= {limit} or use retry_budget: {{budget_percent: {{value: 20}}}}",
        )
    ]


@rule("served-by-header", "responses name the serving pod (%UPSTREAM_HOST%)")
def served_by(st: Stack, m: Manifests) -> list[Finding]:
    env = st.envoy
    if env is None or not env.routes:
        return []
    r = env.routes[0]
    places = [
        (f"{r.path}.response_headers_to_add", r.entry),
        (f"{r.vhost_path}.response_headers_to_add", r.vhost),
        (f"{r.route_config_path}.response_headers_to_add", r.route_config),
    ]
    for path, owner in places:
        for k, opt in enumerate(owner.get("response_headers_to_add") or []):
            header = opt.get("header") or {}
            if "%UPSTREAM_HOST%" in str(header.get("value", "")):
                key = str(header.get("key", "")).lower()
                if key == SERVED_BY_HEADER:
                    return []
                return [
                    _f(
                        "served-by-header",
                        "warning",
                        env.file,
                        f"{path}[{k}].header.key",
                        f"the pod is named in '{key}', loadgate reads '{SERVED_BY_HEADER}' by default",
                        f"rename the header to {SERVED_BY_HEADER} or set served_by_header in the scenario",
                    )
                ]
    return [
        _f(
            "served-by-header",
            "error",
            env.file,
            f"{r.path}.response_headers_to_add",
            "no response header carries %UPSTREAM_HOST%: nothing tells which pod served a request, so balancing cannot be verified",
            f'add response_headers_to_add: [{{header: {{key: {SERVED_BY_HEADER}, value: "%UPSTREAM_HOST%"}}}}]',
        )
    ]
