"""The shipped Envoy bootstrap as the twin runs it: the same document, with only what cannot be
the same on one machine changed, by pure functions over the parsed YAML.

`twin_bootstrap` changes exactly the keys in `TWIN_CHANGES` (a unit test proves nothing else
moves): admin and listeners bind loopback on free ports; the model cluster's endpoint source, a
STRICT_DNS name of the headless Service, becomes EDS from a file the supervisor rewrites as pods
become ready or leave (how EndpointSlices feed Envoy on Kubernetes); the HTTP connection
manager's access log becomes a file in the run directory in loadgate's JSON format. Node id and
cluster are given on Envoy's command line. The least-request settings, breakers, retry policy,
health checks, panic threshold, protocol options and response headers go to Envoy verbatim.

`edit_bootstrap` is how overrides break the stack on purpose: it edits Envoy's own fields
(`lb_policy`, the breaker's `max_requests`, the health-check interval, the retry count), so a
broken twin runs exactly a config a user could ship.

Keys may be written in snake_case or camelCase (Envoy accepts both); the functions here read
either spelling and write the spelling already in use.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadgate.errors import UserError
from loadgate.observe.envoy_access import ACCESS_LOG_FORMAT

HCM_TYPE = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
FILE_LOG_TYPE = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
# Endpoint-source fields of a DNS cluster: meaningless (and partly deprecated) once it is EDS.
DNS_FIELDS = (
    "cluster_type",  # the extension form of STRICT_DNS (envoy.clusters.dns)
    "dns_refresh_rate",
    "dns_failure_refresh_rate",
    "dns_lookup_family",
    "dns_resolvers",
    "dns_resolution_config",
    "typed_dns_resolver_config",
    "respect_dns_ttl",
    "use_tcp_for_dns_lookups",
    "dns_jitter",
    "wait_for_warm_on_init",
)
# Every key twin_bootstrap may change, as documented paths (test_envoy_bootstrap checks them).
TWIN_CHANGES = (
    "admin.address.socket_address",
    "static_resources.listeners[*].address.socket_address",
    "static_resources.listeners[*]...http_connection_manager.access_log",
    "static_resources.clusters[<model>].type",
    "static_resources.clusters[<model>].load_assignment",
    "static_resources.clusters[<model>].eds_cluster_config",
    *(f"static_resources.clusters[<model>].{f}" for f in DNS_FIELDS),
)
# The largest max_requests Envoy accepts (UInt32Value): "no breaker" for a broken twin.
NO_LIMIT = 2**32 - 1


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(p.capitalize() for p in rest)


def key_of(d: Mapping[str, Any], key: str) -> str:
    """The spelling of `key` used in `d` (snake_case or camelCase); snake_case when absent."""
    camel = _camel(key)
    return camel if camel in d and key not in d else key


def get(d: Mapping[str, Any], key: str, default: Any = None) -> Any:
    return d.get(key_of(d, key), default)


def _listeners(boot: dict[str, Any]) -> list[dict[str, Any]]:
    return get(get(boot, "static_resources", {}), "listeners", []) or []


def _clusters(boot: dict[str, Any]) -> list[dict[str, Any]]:
    return get(get(boot, "static_resources", {}), "clusters", []) or []


def _hcms(listener: dict[str, Any]) -> list[dict[str, Any]]:
    """The HttpConnectionManager typed configs of a listener's filter chains."""
    out = []
    for chain in get(listener, "filter_chains", []) or []:
        for flt in get(chain, "filters", []) or []:
            cfg = get(flt, "typed_config", {}) or {}
            if str(cfg.get("@type", "")).endswith(HCM_TYPE):
                out.append(cfg)
    return out


def model_cluster(boot: dict[str, Any], name: str) -> dict[str, Any]:
    for c in _clusters(boot):
        if c.get("name") == name:
            return c
    raise UserError(f"Envoy bootstrap: no cluster {name!r} in static_resources.clusters")


def _loopback(socket_address: dict[str, Any], port: int) -> None:
    socket_address[key_of(socket_address, "address")] = "127.0.0.1"
    socket_address[key_of(socket_address, "port_value")] = port


def _socket_address(holder: dict[str, Any], what: str) -> dict[str, Any]:
    addr = get(holder, "address")
    sa = get(addr, "socket_address") if isinstance(addr, dict) else None
    if not isinstance(sa, dict):
        raise UserError(f"Envoy bootstrap: {what} has no address.socket_address to bind")
    return sa


@dataclass(frozen=True)
class TwinPlacement:
    """Where the twin's Envoy listens and what it reads and writes."""

    admin_port: int
    listener_ports: Mapping[str, int]  # listener name -> free loopback port
    eds_path: Path
    access_log_path: Path


def access_log_entry(path: Path | str) -> dict[str, Any]:
    """loadgate's JSON access log to a file (the twin) — the shipped config logs the same
    format to stdout."""
    return {
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": FILE_LOG_TYPE,
            "path": str(path),
            "log_format": {"json_format": dict(ACCESS_LOG_FORMAT)},
        },
    }


def eds_source(path: Path | str) -> dict[str, Any]:
    return {"eds_config": {"path_config_source": {"path": str(path)}}}


def twin_bootstrap(bootstrap: dict[str, Any], cluster: str, at: TwinPlacement) -> dict[str, Any]:
    """A copy of the bootstrap with only the TWIN_CHANGES keys changed (see module doc)."""
    boot = copy.deepcopy(bootstrap)
    admin = get(boot, "admin")
    if not isinstance(admin, dict):
        raise UserError("Envoy bootstrap: no admin block (the twin reads Envoy's stats there)")
    _loopback(_socket_address(admin, "admin"), at.admin_port)
    for i, listener in enumerate(_listeners(boot)):
        name = listener.get("name", f"listeners[{i}]")
        if name not in at.listener_ports:
            raise UserError(f"Envoy bootstrap: no port for listener {name!r}")
        _loopback(_socket_address(listener, f"listener {name!r}"), at.listener_ports[name])
        for hcm in _hcms(listener):
            hcm[key_of(hcm, "access_log")] = [access_log_entry(at.access_log_path)]
    c = model_cluster(boot, cluster)
    for f in ("load_assignment", *DNS_FIELDS):
        c.pop(key_of(c, f), None)
    c["type"] = "EDS"
    c[key_of(c, "eds_cluster_config")] = eds_source(at.eds_path)
    return boot


def listener_names(bootstrap: dict[str, Any]) -> list[str]:
    return [lst.get("name", f"listeners[{i}]") for i, lst in enumerate(_listeners(bootstrap))]


def _route_actions(listener: dict[str, Any], cluster: str) -> list[dict[str, Any]]:
    """The listener's route actions (`route:` blocks) that target `cluster`."""
    out = []
    for hcm in _hcms(listener):
        for vh in get(get(hcm, "route_config", {}) or {}, "virtual_hosts", []) or []:
            for r in get(vh, "routes", []) or []:
                action = get(r, "route")
                if isinstance(action, dict) and action.get("cluster") == cluster:
                    out.append(action)
    return out


def ingress_listener(bootstrap: dict[str, Any], cluster: str) -> str:
    """Name of the listener whose routes lead to `cluster` (where the twin sends traffic)."""
    for i, listener in enumerate(_listeners(bootstrap)):
        if _route_actions(listener, cluster):
            return listener.get("name", f"listeners[{i}]")
    raise UserError(f"Envoy bootstrap: no listener routes to cluster {cluster!r}")


# -- overrides: broken stacks are broken Envoy configs ---------------------------------------


def edit_bootstrap(
    bootstrap: dict[str, Any],
    cluster: str,
    *,
    lb_policy: str | None = None,
    max_requests: int | None = None,
    health_check_interval_s: float | None = None,
    num_retries: int | None = None,
) -> dict[str, Any]:
    """A copy with the model cluster's (and its routes') fields set; None leaves a field.
    `max_requests=0` lifts the breaker (Envoy's largest limit); `lb_policy` is Envoy's enum
    name, e.g. ROUND_ROBIN; `num_retries=0` removes the retry policy's retries."""
    boot = copy.deepcopy(bootstrap)
    c = model_cluster(boot, cluster)
    if lb_policy is not None:
        c[key_of(c, "lb_policy")] = lb_policy
        if lb_policy != "LEAST_REQUEST":
            c.pop(key_of(c, "least_request_lb_config"), None)  # only valid with LEAST_REQUEST
    if max_requests is not None:
        cb = c.setdefault(key_of(c, "circuit_breakers"), {})
        thresholds = cb.setdefault("thresholds", [])
        default = [t for t in thresholds if t.get("priority", "DEFAULT") == "DEFAULT"]
        if not default:
            default = [{"priority": "DEFAULT"}]
            thresholds.append(default[0])
        default[0][key_of(default[0], "max_requests")] = max_requests or NO_LIMIT
    if health_check_interval_s is not None:
        checks = get(c, "health_checks", []) or []
        if not checks:
            raise UserError(f"cluster {cluster!r} has no health_checks to change the interval of")
        for hc in checks:
            hc["interval"] = f"{health_check_interval_s:g}s"
    if num_retries is not None:
        for action in (a for lst in _listeners(boot) for a in _route_actions(lst, cluster)):
            rp = action.setdefault(key_of(action, "retry_policy"), {})
            rp[key_of(rp, "num_retries")] = num_retries
    return boot
