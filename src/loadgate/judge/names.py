"""Default names the judge looks for in the samples and the timeline.

The timeline's metric and label names are decided by whoever records them (the twin, the
Prometheus profiles, the Kubernetes platform). Every judge function takes these as parameters;
the defaults live here so a rename is one edit. docs/judge.md lists them.
"""

from __future__ import annotations

# gRPC status code names in samples.status
OK = "OK"
REJECTED = ("UNAVAILABLE", "RESOURCE_EXHAUSTED")  # the proxy's fail-fast answers
TIMEOUT = "DEADLINE_EXCEEDED"
CANCELLED = "CANCELLED"
DROPPED = "DROPPED"  # an open-loop arrival the generator could not send (not a request)

# timeline: pod readiness, one row per observation, value 1 (ready) or 0
READY_METRIC = "pod_ready"
READY_SOURCES = ("twin", "kubernetes")
POD_LABEL = "pod"
ADDRESS_LABEL = "address"  # ip:port, what samples.served_by holds

# timeline: a pod's queue depth (Triton's name), labelled by POD_LABEL
QUEUE_METRIC = "nv_inference_pending_request_count"

# timeline: ready replicas of the model Deployment over time
REPLICAS_READY_METRIC = "replicas_ready"
REPLICAS_SPEC_METRIC = "replicas_spec"  # what the autoscaler asked for (drawn in the report)

# timeline: the proxy's in-flight gauge and request counter (Envoy's own series, on the twin
# and on Kubernetes alike)
PROXY_INFLIGHT_METRIC = "envoy_cluster_upstream_rq_active"
PROXY_REQUESTS_METRIC = "envoy_cluster_upstream_rq_total"

# timeline: chaos events (vertical markers in the report)
CHAOS_SOURCE = "chaos"
