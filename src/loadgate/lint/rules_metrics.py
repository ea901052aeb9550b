"""Rules on the metric KEDA scales on: it must actually reach Prometheus, and its absence must not
read as zero load (REFERENCE.md: "empty query results silently scaling to zero").
"""

from __future__ import annotations

from typing import Any

from loadgate.lint.documents import Doc, Manifests
from loadgate.lint.findings import Finding
from loadgate.lint.registry import finding as _f
from loadgate.lint.registry import rule
from loadgate.lint.stack import Stack

ANNOTATION_SCRAPE = "__meta_kubernetes_pod_annotation_prometheus_io_scrape"


def _prometheus_uses_annotations(m: Manifests) -> bool:
    """True when a Prometheus config in these manifests selects pods by prometheus.io/scrape."""
    return any(
        ANNOTATION_SCRAPE in str(text)
        for doc in m.of_kind("ConfigMap")
        for text in (doc.obj.get("data") or {}).values()
    )


def _envoy_deployment(m: Manifests, configmap: str) -> Doc | None:
    """The Deployment that mounts the Envoy bootstrap's ConfigMap."""
    for d in m.of_kind("Deployment"):
        pod = ((d.obj.get("spec") or {}).get("template") or {}).get("spec") or {}
        for vol in pod.get("volumes") or []:
            if (vol.get("configMap") or {}).get("name") == configmap:
                return d
    return None


def _admin_port(config: dict[str, Any]) -> int | None:
    sock = ((config.get("admin") or {}).get("address") or {}).get("socket_address") or {}
    port = sock.get("port_value")
    return int(port) if port is not None else None


@rule("keda-metric-source", "the metric KEDA scales on is scraped, and a missing one is not zero")
def metric_source(st: Stack, m: Manifests) -> list[Finding]:
    so = st.scaled_object
    if so is None:
        return []
    out: list[Finding] = []
    for i, trig in enumerate((so.obj.get("spec") or {}).get("triggers") or []):
        if trig.get("type") != "prometheus":
            continue
        meta = trig.get("metadata") or {}
        if str(meta.get("ignoreNullValues", "true")).lower() in ("true", "1", "t"):
            out.append(
                _f(
                    "keda-metric-source",
                    "warning",
                    so,
                    f"spec.triggers[{i}].metadata.ignoreNullValues",
                    "ignoreNullValues is true (KEDA's default): an empty result -- a broken scrape, "
                    "a renamed metric -- reads as zero load and the fleet scales in",
                    'set ignoreNullValues: "false" so a missing metric stops scaling instead',
                )
            )
        if "envoy_" in str(meta.get("query", "")):
            out += _envoy_scraped(st, m)
    return out


def _envoy_scraped(st: Stack, m: Manifests) -> list[Finding]:
    env = st.envoy
    if env is None or not _prometheus_uses_annotations(m):
        return []  # scraped some other way (PodMonitor, ...): nothing to check here
    dep = _envoy_deployment(m, env.doc.name)
    if dep is None:
        return []
    tmpl = (dep.obj.get("spec") or {}).get("template") or {}
    ann = (tmpl.get("metadata") or {}).get("annotations") or {}
    base = "spec.template.metadata.annotations"
    admin = _admin_port(env.config)
    wrong: list[tuple[str, str]] = []
    if str(ann.get("prometheus.io/scrape", "")).lower() != "true":
        wrong.append(("prometheus.io/scrape", '"true"'))
    if ann.get("prometheus.io/path") != "/stats/prometheus":
        wrong.append(("prometheus.io/path", "/stats/prometheus"))
    if admin is not None and str(ann.get("prometheus.io/port", "")) != str(admin):
        wrong.append(("prometheus.io/port", f'"{admin}" (the admin port)'))
    if not wrong:
        return []
    keys = ", ".join(k for k, _ in wrong)
    return [
        _f(
            "keda-metric-source",
            "error",
            dep,
            base,
            f"Envoy Deployment '{dep.name}' is not scraped as the ScaledObject's query needs "
            f"({keys}): envoy_cluster_upstream_rq_active never reaches Prometheus",
            "set " + ", ".join(f"{k}: {v}" for k, v in wrong) + " on the pod template",
        )
    ]
