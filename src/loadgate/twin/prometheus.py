"""Prometheus (Debian) for the twin: config, pod discovery file, one recording rule, queries.

Prometheus scrapes Envoy's own `/stats/prometheus` (admin port) and the pods' `/metrics`, as in
fixtures/k8s/prometheus.yaml, so the ScaledObject's query runs verbatim on Envoy's series
(`envoy_cluster_upstream_rq_active{envoy_cluster_name=...}`). One recording rule,
`loadgate:pod_inflight{pod=...}` = executing + queued as each pod reports it, is the ground
truth that tests compare Envoy's in-flight count against.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

SCRAPE_INTERVAL = "1s"
ENVOY_JOB = "envoy"
POD_JOB = "pods"


def recording_rules() -> dict:
    return {
        "groups": [
            {
                "name": "loadgate",
                "interval": SCRAPE_INTERVAL,
                "rules": [
                    {
                        "record": "loadgate:pod_inflight",
                        "expr": f'sum by (pod) ({{job="{POD_JOB}",__name__=~"nv_inference_pending_request_count|loadgate_inference_executing_count"}})',
                    },
                ],
            }
        ]
    }


def render_config(run_dir: Path, envoy_admin: str) -> dict:
    """prometheus.yml: 1 s scrapes of the pods (file_sd) and of Envoy's admin stats."""
    return {
        "global": {
            "scrape_interval": SCRAPE_INTERVAL,
            "evaluation_interval": SCRAPE_INTERVAL,
            "scrape_timeout": "900ms",
        },
        "rule_files": [str(run_dir / "rules.yml")],
        "scrape_configs": [
            {
                "job_name": POD_JOB,
                "file_sd_configs": [
                    {"files": [str(run_dir / "pods.json")], "refresh_interval": "1s"}
                ],
            },
            {
                "job_name": ENVOY_JOB,
                "metrics_path": "/stats/prometheus",
                "static_configs": [{"targets": [envoy_admin]}],
            },
        ],
    }


def write_files(run_dir: Path, envoy_admin: str) -> Path:
    """Write prometheus.yml, rules.yml and an empty pods.json; returns the config path."""
    cfg = run_dir / "prometheus.yml"
    (run_dir / "rules.yml").write_text(yaml.safe_dump(recording_rules(), sort_keys=False))
    cfg.write_text(yaml.safe_dump(render_config(run_dir, envoy_admin), sort_keys=False))
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
