"""Locate the architecture's parts in a set of manifests, with the key path of each.

Envoy's listener routes to the model cluster; the ScaledObject targets the model Deployment;
its container carries the readiness limit. Rules read these `Located` values so every finding
can name the file and key path to change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from loadgate.lint.documents import Doc, Manifests
from loadgate.lint.schemas import envoy_bootstraps

HCM_SUFFIX = ".HttpConnectionManager"


@dataclass(frozen=True)
class Located:
    file: str
    path: str
    value: Any


@dataclass
class Route:
    path: str  # key path of the route entry
    route: dict[str, Any]  # the route's `route:` action
    entry: dict[str, Any]  # the whole route entry (match, route, response_headers_to_add)
    vhost: dict[str, Any]
    vhost_path: str
    route_config: dict[str, Any]
    route_config_path: str


@dataclass
class Envoy:
    doc: Doc  # the ConfigMap
    prefix: str  # data[envoy.yaml]
    config: dict[str, Any]
    routes: list[Route] = field(default_factory=list)  # routes to the model cluster
    cluster: dict[str, Any] | None = None
    cluster_path: str = ""


@dataclass
class Stack:
    envoy: Envoy | None = None
    scaled_object: Doc | None = None
    deployment: Doc | None = None
    notes: list[str] = field(default_factory=list)  # why a part was not found


def _all_routes(config: dict[str, Any], prefix: str) -> list[Route]:
    out: list[Route] = []
    listeners = (config.get("static_resources") or {}).get("listeners") or []
    for li, listener in enumerate(listeners):
        for ci, chain in enumerate(listener.get("filter_chains") or []):
            for fi, flt in enumerate(chain.get("filters") or []):
                tc = flt.get("typed_config") or {}
                if not str(tc.get("@type", "")).endswith(HCM_SUFFIX):
                    continue
                rc = tc.get("route_config") or {}
                rc_path = (
                    f"{prefix}.static_resources.listeners[{li}].filter_chains[{ci}]"
                    f".filters[{fi}].typed_config.route_config"
                )
                for vi, vh in enumerate(rc.get("virtual_hosts") or []):
                    vh_path = f"{rc_path}.virtual_hosts[{vi}]"
                    for ri, entry in enumerate(vh.get("routes") or []):
                        action = entry.get("route")
                        if isinstance(action, dict):
                            out.append(
                                Route(
                                    f"{vh_path}.routes[{ri}]",
                                    action,
                                    entry,
                                    vh,
                                    vh_path,
                                    rc,
                                    rc_path,
                                )
                            )
    return out


_CLUSTER_LABEL = re.compile(r'envoy_cluster_name\s*=~?\s*"([^"]+)"')


def _query_cluster(so: Doc | None) -> str | None:
    for trig in ((so.obj.get("spec") or {}).get("triggers") or []) if so else []:
        m = _CLUSTER_LABEL.search(str((trig.get("metadata") or {}).get("query", "")))
        if m:
            return m.group(1)
    return None


def locate(m: Manifests, configs: dict[tuple[str, str], dict[str, Any]]) -> Stack:
    """Find the model route/cluster, ScaledObject and Deployment.

    `configs` maps (file, data key) to the validated Envoy bootstrap; a bootstrap that failed
    validation is absent, and its rules are then skipped (the schema finding says why).
    """
    st = Stack()
    sos = m.of_kind("ScaledObject")
    st.scaled_object = sos[0] if sos else None
    if len(sos) > 1:
        st.notes.append(f"{len(sos)} ScaledObjects; checking {sos[0].name}")
    target = (
        ((st.scaled_object.obj.get("spec") or {}).get("scaleTargetRef") or {}).get("name")
        if st.scaled_object
        else None
    )
    deps = m.of_kind("Deployment")
    if target:
        st.deployment = next((d for d in deps if d.name == target), None)

    for doc, key, _text in envoy_bootstraps(m):
        config = configs.get((doc.file, key))
        if config is None:
            continue
        prefix = f"data[{key}]"
        env = Envoy(doc, prefix, config)
        routes = _all_routes(config, prefix)
        names = sorted({r.route.get("cluster") for r in routes if r.route.get("cluster")})
        wanted = _query_cluster(st.scaled_object)
        name = wanted if wanted in names else (names[0] if names else None)
        if len(names) > 1 and wanted not in names:
            st.notes.append(f"routes go to {names}; checking '{name}' as the model cluster")
        env.routes = [r for r in routes if r.route.get("cluster") == name]
        clusters = (config.get("static_resources") or {}).get("clusters") or []
        for i, c in enumerate(clusters):
            if c.get("name") == name:
                env.cluster, env.cluster_path = c, f"{prefix}.static_resources.clusters[{i}]"
        st.envoy = env
        break
    if st.deployment is None and st.envoy is not None and st.envoy.cluster is not None:
        st.deployment = _selected_by_cluster_service(m, st.envoy.cluster)
    return st


def _selected_by_cluster_service(m: Manifests, cluster: dict[str, Any]) -> Doc | None:
    """Without a ScaledObject: the Deployment behind the Service the model cluster resolves."""
    try:
        lb = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
        host = lb["endpoint"]["address"]["socket_address"]["address"]
    except (KeyError, IndexError, TypeError):
        return None
    svc = next((d for d in m.of_kind("Service") if d.name == host.split(".")[0]), None)
    selector = ((svc.obj.get("spec") or {}).get("selector") or {}) if svc else {}
    if not selector:
        return None
    for d in m.of_kind("Deployment"):
        labels = (((d.obj.get("spec") or {}).get("template") or {}).get("metadata") or {}).get(
            "labels"
        ) or {}
        if all(labels.get(k) == v for k, v in selector.items()):
            return d
    return None


def containers(doc: Doc) -> list[dict[str, Any]]:
    spec = (((doc.obj.get("spec") or {}).get("template") or {}).get("spec")) or {}
    return [c for c in spec.get("containers") or [] if isinstance(c, dict)]


def model_container(doc: Doc) -> tuple[int, dict[str, Any]] | None:
    """The serving container: the one with a readiness probe, else the first."""
    cs = containers(doc)
    for i, c in enumerate(cs):
        if "readinessProbe" in c:
            return i, c
    return (0, cs[0]) if cs else None
