"""Prometheus (Debian) for the twin: config, pod discovery file, recording rules, queries.

The recording rules publish HAProxy's real series under Envoy's metric names, labelled
`envoy_cluster_name=<cluster>`, so a ScaledObject query written for Envoy runs verbatim here:

| Envoy series                              | from (HAProxy exporter / pods)                        |
|-------------------------------------------|-------------------------------------------------------|
| envoy_cluster_upstream_rq_active          | haproxy_backend_current_sessions (in-flight streams)  |
| envoy_cluster_upstream_rq_pending_active  | haproxy_backend_current_queue                          |
| envoy_cluster_upstream_rq_pending_overflow| haproxy_frontend_requests_denied_total (breaker 503s) |
| envoy_cluster_upstream_rq_total           | haproxy_backend_http_requests_total                    |
| envoy_cluster_membership_healthy          | haproxy_backend_active_servers (servers UP)            |

Plus `loadgate:pod_inflight{pod=...}` = executing + queued as each pod reports it, the
ground truth that tests compare `envoy_cluster_upstream_rq_active` against.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from loadgate.twin.haproxy import BACKEND, FRONTEND

SCRAPE_INTERVAL = "1s"


def recording_rules(cluster: str) -> dict:
    labels = {"envoy_cluster_name": cluster}

    def rule(name: str, expr: str) -> dict:
        return {"record": name, "expr": expr, "labels": dict(labels)}

    be, fe = f'{{proxy="{BACKEND}"}}', f'{{proxy="{FRONTEND}"}}'
    return {
        "groups": [
            {
                "name": "loadgate-envoy-compat",
                "interval": SCRAPE_INTERVAL,
                "rules": [
                    rule(
                        "envoy_cluster_upstream_rq_active",
                        f"sum(haproxy_backend_current_sessions{be})",
                    ),
                    rule(
                        "envoy_cluster_upstream_rq_pending_active",
                        f"sum(haproxy_backend_current_queue{be})",
                    ),
                    rule(
                        "envoy_cluster_upstream_rq_pending_overflow",
                        f"sum(haproxy_frontend_requests_denied_total{fe})",
                    ),
                    rule(
                        "envoy_cluster_upstream_rq_total",
                        f"sum(haproxy_backend_http_requests_total{be})",
                    ),
                    rule(
                        "envoy_cluster_membership_healthy",
                        f"sum(haproxy_backend_active_servers{be})",
                    ),
                    {
                        "record": "loadgate:pod_inflight",
                        "expr": 'sum by (pod) ({job="pods",__name__=~"nv_inference_pending_request_count|loadgate_inference_executing_count"})',
                    },
                ],
            }
        ]
    }


def render_config(run_dir: Path, haproxy_metrics: str) -> dict:
    """prometheus.yml: 1 s scrapes of the pods (file_sd) and of HAProxy's exporter."""
    return {
        "global": {
            "scrape_interval": SCRAPE_INTERVAL,
            "evaluation_interval": SCRAPE_INTERVAL,
            "scrape_timeout": "900ms",
        },
        "rule_files": [str(run_dir / "rules.yml")],
        "scrape_configs": [
            {
                "job_name": "pods",
                "file_sd_configs": [
                    {"files": [str(run_dir / "pods.json")], "refresh_interval": "1s"}
                ],
            },
            {"job_name": "haproxy", "static_configs": [{"targets": [haproxy_metrics]}]},
        ],
    }


def write_files(run_dir: Path, cluster: str, haproxy_metrics: str) -> Path:
    """Write prometheus.yml, rules.yml and an empty pods.json; returns the config path."""
    cfg = run_dir / "prometheus.yml"
    (run_dir / "rules.yml").write_text(yaml.safe_dump(recording_rules(cluster), sort_keys=False))
    cfg.write_text(yaml.safe_dump(render_config(run_dir, haproxy_metrics), sort_keys=False))
    write_targets(run_dir / "pods.json", [])
    return cfg


def write_targets(path: Path, pods: list[tuple[str, str, dict[str, str]]]) -> None:
    """file_sd targets [(pod name, metrics host:port, extra labels)], replaced atomically so
    Prometheus never reads a half-written file."""
    groups = [{"targets": [addr], "labels": {"pod": name, **labels}} for name, addr, labels in pods]
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(groups, indent=1))
    os.replace(tmp, path)


def command(binary: str, config: Path, run_dir: Path, port: int) -> list[str]:
    return [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={run_dir / 'tsdb'}",
        "--storage.tsdb.retention.time=1d",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]


def query(url: str, promql: str, timeout: float = 2.0) -> list[dict]:
    """Instant query; the result vector (list of {metric, value})."""
    full = f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(full, timeout=timeout) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise ValueError(f"prometheus query failed: {body.get('error')}")
    data = body["data"]
    if data["resultType"] == "scalar":
        return [{"metric": {}, "value": data["result"]}]
    return data["result"]


def instant_value(url: str, promql: str, timeout: float = 2.0) -> float | None:
    """The single value of a query as KEDA reads it: None for an empty result, error for many."""
    result = query(url, promql, timeout)
    if not result:
        return None
    if len(result) > 1:
        raise ValueError(f"query returned {len(result)} elements, KEDA expects one: {promql}")
    return float(result[0]["value"][1])
