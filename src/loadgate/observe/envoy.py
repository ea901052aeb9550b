"""What Envoy knows: cluster stats from admin `/stats/prometheus`, per-host in-flight requests
from admin `/clusters`, and which pod an `x-upstream-host: ip:port` header names.

Parsers are pure functions over the admin endpoints' text; `EnvoyAdmin` fetches it (bounded
timeouts, one clear error). In Kubernetes, reach the admin port with
`kubectl port-forward deploy/envoy 9901` -- it must never be exposed beyond the cluster.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pandas as pd
import requests

from loadgate.errors import UserError
from loadgate.observe import promtext
from loadgate.platform.base import Pod

# Cluster-wide series the gates read (REFERENCE.md, Envoy stats), by short name.
CLUSTER_SERIES = {
    "rq_active": "envoy_cluster_upstream_rq_active",
    "rq_pending_active": "envoy_cluster_upstream_rq_pending_active",
    # breaker overflow of max_requests (Envoy >= 1.28; older Envoys counted it as pending)
    "rq_active_overflow": "envoy_cluster_upstream_rq_active_overflow",
    "rq_pending_overflow": "envoy_cluster_upstream_rq_pending_overflow",
    "rq_total": "envoy_cluster_upstream_rq_total",
    "cx_active": "envoy_cluster_upstream_cx_active",
    "membership_healthy": "envoy_cluster_membership_healthy",
    "breaker_rq_open": "envoy_cluster_circuit_breakers_default_rq_open",
}

_HOST = re.compile(r"^(\[[0-9a-fA-F:.%]+\]|[^:\[\]]+):\d+$")


@dataclass
class HostStats:
    address: str  # ip:port as Envoy prints it (and as %UPSTREAM_HOST% reports it)
    rq_active: int = 0
    rq_total: int = 0
    rq_error: int = 0
    cx_active: int = 0
    health_flags: str = "healthy"  # "healthy" or "/failed_active_hc/..." flags
    hostname: str = ""

    @property
    def healthy(self) -> bool:
        return self.health_flags == "healthy"


@dataclass
class ClusterStatus:
    name: str
    hosts: dict[str, HostStats] = field(default_factory=dict)
    # {"default_priority": {"max_requests": 48, ...}, "high_priority": {...}}
    circuit_breakers: dict[str, dict[str, int]] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)  # observability_name, added_via_api


def _split_clusters_line(line: str) -> tuple[str, str | None, str, str] | None:
    """'c::10.0.0.1:8001::rq_active::3' -> (c, host, key, value); host None for cluster lines."""
    if "::" not in line:
        return None
    cluster, rest = line.split("::", 1)
    if rest.startswith("["):  # IPv6 host "[::1]:8001" contains "::" itself
        end = rest.find("]:")
        host_end = rest.find("::", end + 2) if end >= 0 else -1
        if host_end < 0:
            return None
        host, tail = rest[:host_end], rest[host_end + 2 :]
        key, _, val = tail.partition("::")
        return cluster, host, key, val
    parts = rest.split("::")
    if len(parts) >= 3 and _HOST.match(parts[0]):
        return cluster, parts[0], parts[1], "::".join(parts[2:])
    if len(parts) >= 3:  # "default_priority::max_requests::48", "outlier::...::..."
        return cluster, None, f"{parts[0]}::{parts[1]}", "::".join(parts[2:])
    return cluster, None, parts[0], parts[1] if len(parts) > 1 else ""


def _int(v: str) -> int:
    try:
        return int(float(v))
    except ValueError:
        return 0


def parse_clusters(text: str) -> dict[str, ClusterStatus]:
    """Admin `/clusters` (text format) -> {cluster name: ClusterStatus with per-host stats}."""
    out: dict[str, ClusterStatus] = {}
    for raw in text.splitlines():
        parsed = _split_clusters_line(raw.strip())
        if parsed is None:
            continue
        cname, host, key, val = parsed
        cluster = out.setdefault(cname, ClusterStatus(cname))
        if host is None:
            prio, sep, limit = key.partition("::")
            if sep and prio.endswith("_priority"):
                cluster.circuit_breakers.setdefault(prio, {})[limit] = _int(val)
            else:
                cluster.settings[key] = val
            continue
        hs = cluster.hosts.setdefault(host, HostStats(host))
        if key in ("rq_active", "rq_total", "rq_error", "cx_active"):
            setattr(hs, key, _int(val))
        elif key == "health_flags":
            hs.health_flags = val
        elif key == "hostname":
            hs.hostname = val
    return out


def rq_active_by_host(text: str, cluster: str) -> dict[str, int]:
    """{ip:port: requests in flight} for one cluster, from admin `/clusters`."""
    status = parse_clusters(text).get(cluster)
    if status is None:
        raise UserError(f"envoy /clusters has no cluster '{cluster}'")
    return {h.address: h.rq_active for h in status.hosts.values()}


def cluster_stats(samples: list[promtext.Sample], cluster: str) -> dict[str, float]:
    """The CLUSTER_SERIES values of one cluster from parsed `/stats/prometheus` samples.

    A counter Envoy has never incremented may be absent: it reads as 0.
    """
    if not promtext.select(samples, CLUSTER_SERIES["rq_total"], envoy_cluster_name=cluster):
        raise UserError(f"envoy stats have no cluster '{cluster}' (envoy_cluster_name)")
    return {
        short: promtext.value(samples, name, default=0.0, envoy_cluster_name=cluster)
        for short, name in CLUSTER_SERIES.items()
    }


def endpoint_rq_active(samples: list[promtext.Sample], cluster: str) -> dict[str, float]:
    """Per-host in flight from `envoy_cluster_endpoint_rq_active` (needs per_endpoint_stats)."""
    return {
        s.labels.get("envoy_endpoint_address", ""): s.value
        for s in promtext.select(
            samples, "envoy_cluster_endpoint_rq_active", envoy_cluster_name=cluster
        )
    }


# -- ip:port -> pod ----------------------------------------------------------------------------


def pod_names_by_address(pods: Iterable[Pod]) -> dict[str, str]:
    """{"10.244.1.12:8001": pod name, "10.244.1.12": pod name} for mapping served-by headers.

    The bare IP is kept too: the header carries the port Envoy dialled, which may be a Service
    targetPort different from the container port the platform reported.
    """
    out: dict[str, str] = {}
    for p in pods:
        if not p.address:
            continue
        out[p.address] = p.name
        out.setdefault(_ip(p.address), p.name)
    return out


def _ip(address: str) -> str:
    host, _, _port = address.rpartition(":")
    return host or address


def name_served_by(served_by: pd.Series, names: Mapping[str, str]) -> pd.Series:
    """Vectorized: ip:port values -> pod names (exact address, then bare IP); unknown stay as is.

    Pods come and go during a run, so pass a mapping accumulated over the run's pod listings.
    """
    s = served_by.fillna("").astype(str)
    exact = s.map(names)
    by_ip = s.str.replace(r":\d+$", "", regex=True).map(names)
    return exact.fillna(by_ip).fillna(s)


# -- fetching ------------------------------------------------------------------------------


class EnvoyAdmin:
    """Envoy's admin interface at `url` (e.g. http://127.0.0.1:9901 through a port-forward)."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str) -> str:
        try:
            r = requests.get(self.url + path, timeout=self.timeout)
        except requests.RequestException as e:
            raise UserError(f"cannot reach Envoy admin at {self.url}: {type(e).__name__}") from None
        if r.status_code != 200:
            raise UserError(f"Envoy admin {self.url}{path}: HTTP {r.status_code}")
        return r.text

    def stats(self) -> list[promtext.Sample]:
        return promtext.parse(self._get("/stats/prometheus"), f"{self.url}/stats/prometheus")

    def clusters(self) -> dict[str, ClusterStatus]:
        return parse_clusters(self._get("/clusters"))
