"""The Envoy bootstrap of the reference deployment, validated and reduced to what the twin uses.

The whole bootstrap is checked against the typed Envoy v3 API (`envoy-data-plane`), which rejects
unknown fields, bad enum values and malformed durations anywhere, also inside `typed_config`
(`@type`) blocks. The validated config is re-emitted as snake_case (so camelCase input works
too) and the model cluster is then read through small pydantic models.
"""

from __future__ import annotations

import contextlib
import importlib
import re
from typing import Any

import betterproto2
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from loadgate.config import describe_validation_error
from loadgate.errors import UserError
from loadgate.twin.spec import EnvoyFacts

HPO_KEY = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


class EnvoyPart(BaseModel):
    """Envoy shapes the twin reads. Unknown-field checking is done by the typed Envoy API, so
    these models ignore the many fields the twin does not use."""

    model_config = ConfigDict(extra="ignore")


class Thresholds(EnvoyPart):
    # Envoy's defaults apply when a threshold (or the whole circuit_breakers block) is absent.
    priority: str = "DEFAULT"
    max_requests: int = Field(default=1024, ge=1)
    max_pending_requests: int = Field(default=1024, ge=1)


class CircuitBreakers(EnvoyPart):
    thresholds: list[Thresholds] = []


class SocketAddress(EnvoyPart):
    address: str
    port_value: int


class Address(EnvoyPart):
    socket_address: SocketAddress


class HealthCheckConfig(EnvoyPart):
    port_value: int | None = None


class Endpoint(EnvoyPart):
    address: Address
    health_check_config: HealthCheckConfig | None = None


class LbEndpoint(EnvoyPart):
    endpoint: Endpoint


class LocalityEndpoints(EnvoyPart):
    lb_endpoints: list[LbEndpoint]


class LoadAssignment(EnvoyPart):
    endpoints: list[LocalityEndpoints] = Field(min_length=1)


class HttpHealthCheck(EnvoyPart):
    path: str


class HealthCheck(EnvoyPart):
    interval: str
    unhealthy_threshold: int | None = None
    http_health_check: HttpHealthCheck | None = None


class Percent(EnvoyPart):
    value: float = 0.0


class CommonLbConfig(EnvoyPart):
    healthy_panic_threshold: Percent | None = None


# Envoy's healthy_panic_threshold when absent: below 50 % healthy hosts, route to all of them.
DEFAULT_PANIC_THRESHOLD = 50.0


class Cluster(EnvoyPart):
    name: str
    common_lb_config: CommonLbConfig | None = None
    type: str = "STATIC"
    lb_policy: str = "ROUND_ROBIN"
    circuit_breakers: CircuitBreakers | None = None
    typed_extension_protocol_options: dict[str, dict[str, Any]] = {}
    health_checks: list[HealthCheck] = []
    load_assignment: LoadAssignment


class RetryPolicy(EnvoyPart):
    retry_on: str = ""
    num_retries: int = 1  # Envoy's default when a retry_policy is present


class HeaderValue(EnvoyPart):
    key: str
    value: str


class HeaderOption(EnvoyPart):
    header: HeaderValue


class RouteAction(EnvoyPart):
    cluster: str
    retry_policy: RetryPolicy | None = None


class Route(EnvoyPart):
    route: RouteAction | None = None
    response_headers_to_add: list[HeaderOption] = []


class VirtualHost(EnvoyPart):
    routes: list[Route] = []
    response_headers_to_add: list[HeaderOption] = []


class RouteConfig(EnvoyPart):
    virtual_hosts: list[VirtualHost] = []
    response_headers_to_add: list[HeaderOption] = []


class ModelCluster(EnvoyPart):
    """The model cluster as the bootstrap wires it: its facts, and the headless Service its
    endpoints come from (the twin replaces that endpoint source, nothing else)."""

    facts: EnvoyFacts
    dns_host: str  # the (headless) Service the cluster resolves, e.g. modelserver.ns.svc...
    grpc_port: int
    health_port: int | None
    health_path: str | None


# --- validation against the typed Envoy API --------------------------------------------------


def _type_urls(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        if isinstance(node.get("@type"), str):
            out.add(node["@type"])
        for v in node.values():
            _type_urls(v, out)
    elif isinstance(node, list):
        for v in node:
            _type_urls(v, out)


def _register_types(config: dict[str, Any], source: str) -> None:
    """Import the envoy-data-plane module of every `@type` so the Any fields can be decoded."""
    from envoy_data_plane.message_pool import default_message_pool

    urls: set[str] = set()
    _type_urls(config, urls)
    for url in sorted(urls):
        full = url.rsplit("/", 1)[-1]
        module = "envoy_data_plane." + full.rsplit(".", 1)[0]
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
        if url not in default_message_pool.url_to_type:
            path = _find(config, lambda k, v, u=url: k == "@type" and v == u)
            raise UserError(f"{source}: {path or '@type'}: unknown Envoy type {url!r}")


def _find(node: Any, pred, prefix: str = "") -> str | None:
    """Key path of the first (key, value) in `node` for which pred holds (depth first)."""
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for k, v in items:
        path = f"{prefix}[{k}]" if isinstance(k, int) else (f"{prefix}.{k}" if prefix else str(k))
        if pred(k, v):
            return path
        found = _find(v, pred, path)
        if found:
            return found
    return None


def _describe_envoy_error(err: Exception, config: dict[str, Any]) -> str:
    text = str(err).strip().strip('"')
    m = re.search(r"Unknown field '([^']+)' in message (\w+)", text)
    if m:
        field, message = m.groups()
        path = _find(config, lambda k, v: k == field) or field
        return f"{path}: unknown field {field!r} (not in Envoy {message})"
    m = re.search(r"Unknown value (\S+) for enum (\w+)", text)
    if m:
        value, enum = m.groups()
        path = _find(config, lambda k, v: str(v) == value) or "?"
        return f"{path}: {value!r} is not a valid Envoy {enum}"
    m = re.search(r"Invalid duration string: (.*)", text)
    if m:
        value = m.group(1).strip()
        path = _find(config, lambda k, v: str(v) == value) or "?"
        return f"{path}: invalid duration {value!r} (expected e.g. '0.5s')"
    if isinstance(err, ValidationError) and err.errors():
        bad = err.errors()[0].get("input")
        path = _find(config, lambda k, v: v == bad and not isinstance(v, (dict, list))) or "?"
        return f"{path}: {err.errors()[0]['msg']} (got {bad!r})"
    return text.splitlines()[0] if text else type(err).__name__


def validate_bootstrap(config: Any, source: str) -> dict[str, Any]:
    """Check a parsed bootstrap against Envoy's v3 API; return it normalized to snake_case."""
    from envoy_data_plane.envoy.config.bootstrap.v3 import Bootstrap

    if not isinstance(config, dict):
        raise UserError(
            f"{source}: expected an Envoy bootstrap mapping, got {type(config).__name__}"
        )
    _register_types(config, source)
    try:
        boot = Bootstrap.from_dict(config)
    except (KeyError, ValueError, TypeError, ValidationError) as e:
        raise UserError(f"{source}: {_describe_envoy_error(e, config)}") from None
    return boot.to_dict(casing=betterproto2.Casing.SNAKE)


# --- reading the model cluster ---------------------------------------------------------------


def _seconds(duration: str) -> float:
    return float(duration.rstrip("s"))


def _routes(boot: dict[str, Any]) -> list[tuple[RouteConfig, VirtualHost, Route]]:
    out = []
    for listener in boot.get("static_resources", {}).get("listeners", []):
        for chain in listener.get("filter_chains", []):
            for flt in chain.get("filters", []):
                cfg = flt.get("typed_config", {})
                if not str(cfg.get("@type", "")).endswith(".HttpConnectionManager"):
                    continue
                rc = RouteConfig.model_validate(cfg.get("route_config", {}))
                out += [(rc, vh, r) for vh in rc.virtual_hosts for r in vh.routes if r.route]
    return out


def _served_by_header(rc: RouteConfig, vh: VirtualHost, route: Route) -> str | None:
    for opt in [
        *route.response_headers_to_add,
        *vh.response_headers_to_add,
        *rc.response_headers_to_add,
    ]:
        if "%UPSTREAM_HOST%" in opt.header.value:
            return opt.header.key.lower()
    return None


def panic_threshold(cluster: Cluster) -> float:
    """Envoy's effective healthy_panic_threshold for the cluster, in percent."""
    clc = cluster.common_lb_config
    if clc is None or clc.healthy_panic_threshold is None:
        return DEFAULT_PANIC_THRESHOLD
    return clc.healthy_panic_threshold.value


def model_cluster_facts(boot: dict[str, Any], source: str) -> ModelCluster:
    """The cluster the listener routes to, with its route's retry policy and served-by header."""
    routes = _routes(boot)
    targets = sorted({r.route.cluster for _, _, r in routes if r.route})
    if len(targets) != 1:
        raise UserError(
            f"{source}: expected routes to exactly one upstream cluster (the model servers), "
            f"found {targets or 'none'}"
        )
    name = targets[0]
    clusters = boot.get("static_resources", {}).get("clusters", [])
    idx = next((i for i, c in enumerate(clusters) if c.get("name") == name), None)
    if idx is None:
        raise UserError(
            f"{source}: routes point at cluster {name!r}, which static_resources does not define"
        )
    where = f"{source}: static_resources.clusters[{idx}]"
    try:
        cluster = Cluster.model_validate(clusters[idx])
    except ValidationError as e:
        raise UserError(describe_validation_error(e, where)) from None
    if cluster.type not in ("STRICT_DNS", "LOGICAL_DNS"):
        # The twin follows the DNS name to the headless Service and its Deployment; it replaces
        # that endpoint source with EDS from a file.
        raise UserError(
            f"{where}.type: expected STRICT_DNS on the headless Service, got {cluster.type}"
        )
    ep = cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint
    default = [
        t
        for t in (cluster.circuit_breakers.thresholds if cluster.circuit_breakers else [])
        if t.priority == "DEFAULT"
    ]
    breaker = default[0] if default else Thresholds()
    hpo = cluster.typed_extension_protocol_options.get(HPO_KEY, {})
    mrpc = hpo.get("common_http_protocol_options", {}).get("max_requests_per_connection")
    http_hc = [h for h in cluster.health_checks if h.http_health_check]
    rc, vh, route = next((rc, vh, r) for rc, vh, r in routes if r.route and r.route.cluster == name)
    retry = route.route.retry_policy if route.route else None
    facts = EnvoyFacts(
        cluster_name=cluster.name,
        lb_policy=cluster.lb_policy.lower(),
        max_requests=breaker.max_requests,
        max_pending_requests=breaker.max_pending_requests,
        max_requests_per_connection=int(mrpc) if mrpc is not None else None,
        retry_on=[s.strip() for s in retry.retry_on.split(",") if s.strip()] if retry else [],
        num_retries=retry.num_retries if retry else 0,
        served_by_header=_served_by_header(rc, vh, route),
        health_check_interval_s=_seconds(http_hc[0].interval) if http_hc else None,
        panic_threshold=panic_threshold(cluster),
    )
    return ModelCluster(
        facts=facts,
        dns_host=ep.address.socket_address.address,
        grpc_port=ep.address.socket_address.port_value,
        health_port=ep.health_check_config.port_value if ep.health_check_config else None,
        health_path=http_hc[0].http_health_check.path if http_hc else None,
    )
