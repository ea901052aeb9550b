"""Rules on the Envoy bootstrap: least request, the max_requests breaker, retries that cannot
storm, and the served-by header (REFERENCE.md, Envoy).
"""

from __future__ import annotations

from typing import Any

from loadgate.lint.documents import Manifests
from loadgate.lint.findings import Finding
from loadgate.lint.registry import finding as _f
from loadgate.lint.registry import rule
from loadgate.lint.stack import Envoy, Route, Stack

MAX_RETRIES_PER_REQUEST = 3
SERVED_BY_HEADER = "x-upstream-host"
# retry_on conditions an overloaded upstream triggers: retrying them multiplies the overload.
OVERLOAD_RETRY_ON = {
    "5xx": "an upstream 503 (an overloaded pod or proxy)",
    "gateway-error": "an upstream 502/503/504",
    "resource-exhausted": "gRPC RESOURCE_EXHAUSTED, the overload status",
}


def _default_threshold(cluster: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    ths = (cluster.get("circuit_breakers") or {}).get("thresholds") or []
    for i, t in enumerate(ths):
        if t.get("priority", "DEFAULT") == "DEFAULT":
            return i, t
    return None


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
            env.doc,
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
                env.doc,
                f"{env.cluster_path}.circuit_breakers",
                "no DEFAULT circuit-breaker thresholds: Envoy's implicit max_requests of 1024 applies, a number unrelated to what the pods can hold, so overload queues in the pods instead of failing fast",
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
            env.doc,
            f"{env.cluster_path}.circuit_breakers.thresholds[{i}]",
            f"no max_requests: gRPC requests in flight are unbounded{also}",
            "add max_requests: <pods x (batch + readiness queue limit)> so overflow fails fast with UNAVAILABLE",
        )
    ]


@rule("panic-threshold-zero", "not-ready pods get no traffic, even when most are overloaded")
def panic_threshold(st: Stack, m: Manifests) -> list[Finding]:
    env = st.envoy
    if env is None or env.cluster is None:
        return []
    clc = env.cluster.get("common_lb_config") or {}
    # Present but empty ({}) is 0: the typed Envoy API drops zero values when it normalizes.
    present = "healthy_panic_threshold" in clc
    value = float((clc.get("healthy_panic_threshold") or {}).get("value", 0.0)) if present else 50.0
    if value == 0:
        return []
    shown = f"{value:g}%" if present else "50% (the default when absent)"
    return [
        _f(
            "panic-threshold-zero",
            "error",
            env.doc,
            f"{env.cluster_path}.common_lb_config.healthy_panic_threshold",
            f"healthy_panic_threshold is {shown}: once that share of pods fails readiness (a flood overloads most of them at once) Envoy routes to every pod again, overloaded ones included, and their queues grow without bound",
            "set common_lb_config.healthy_panic_threshold: {value: 0} so a fleet with no ready pod answers 503 at once",
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
                    env.doc,
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
                env.doc,
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
                env.doc,
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
            env.doc,
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
                        env.doc,
                        f"{path}[{k}].header.key",
                        f"the pod is named in '{key}', loadgate reads '{SERVED_BY_HEADER}' by default",
                        f"rename the header to {SERVED_BY_HEADER} or set served_by_header in the scenario",
                    )
                ]
    return [
        _f(
            "served-by-header",
            "error",
            env.doc,
            f"{r.path}.response_headers_to_add",
            "no response header carries %UPSTREAM_HOST%: nothing tells which pod served a request, so balancing cannot be verified",
            f'add response_headers_to_add: [{{header: {{key: {SERVED_BY_HEADER}, value: "%UPSTREAM_HOST%"}}}}]',
        )
    ]
