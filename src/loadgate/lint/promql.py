"""What a KEDA query does with the per-pod numbers, read from its PromQL text.

Heuristics, not a PromQL parser: they recognise the usual ways of turning a fleet total into a
per-pod figure (an average, or a division by a pod count). That is enough to catch the classic
mistake of dividing twice: with metricType AverageValue the HPA already divides by the pods.
"""

from __future__ import annotations

import re

_AVG = re.compile(r"\bavg\s*(?:\(|\b(?:by|without)\b)")
_POD_COUNT = (
    r"(?:count\b|count_values\b"
    r"|sum\s*(?:(?:by|without)\s*\([^)]*\)\s*)?\(\s*(?:kube_deployment_(?:status|spec)_replicas|kube_pod_status_ready|up)\b"
    r"|kube_deployment_(?:status|spec)_replicas|kube_pod_status_ready)"
)
_DIV_BY_PODS = re.compile(
    r"/\s*(?:(?:on|ignoring)\s*\([^)]*\)\s*)?(?:group_(?:left|right)\s*(?:\([^)]*\))?\s*)?"
    r"(?:scalar\s*\(\s*)?" + _POD_COUNT
)
_SUM = re.compile(r"\bsum\s*(?:\(|\b(?:by|without)\b)")
IN_FLIGHT_METRICS = ("envoy_cluster_upstream_rq_active", "nv_inference_pending_request_count")


def per_pod(query: str) -> str | None:
    """The construct that makes the query a per-pod figure ('avg(' or '/ count(...)'), or None."""
    for rx in (_AVG, _DIV_BY_PODS):
        m = rx.search(query)
        if m:
            return m.group(0).strip()
    return None


def sums(query: str) -> bool:
    return bool(_SUM.search(query))


def in_flight_metric(query: str) -> str | None:
    return next((name for name in IN_FLIGHT_METRICS if name in query), None)
