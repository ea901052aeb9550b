"""`loadgate lint`: the reference manifests pass; a broken copy fails each rule it breaks.

Broken copies are built in tmp_path from the real fixtures/k8s by editing the parsed documents,
so the tests follow the manifests as they evolve.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from loadgate.cli import main
from loadgate.errors import UserError
from loadgate.lint.check import lint
from loadgate.lint.promql import per_pod

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "k8s"


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (the embedded Envoy bootstrap) stay block scalars, as people write them."""


_BlockDumper.add_representer(
    str,
    lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", v, style="|" if "\n" in v else None),
)


@pytest.fixture
def k8s(tmp_path) -> Path:
    d = tmp_path / "k8s"
    shutil.copytree(FIXTURES, d)
    return d


def edit(directory: Path, kind: str, fn: Callable[[dict[str, Any]], None], name: str | None = None):
    """Apply fn to the first object of `kind` (and name) among the directory's manifests."""
    for path in sorted(directory.glob("*.yaml")):
        docs = list(yaml.safe_load_all(path.read_text()))
        for doc in docs:
            meta = (doc or {}).get("metadata") or {}
            if (doc or {}).get("kind") == kind and (name is None or meta.get("name") == name):
                fn(doc)
                path.write_text(yaml.dump_all(docs, Dumper=_BlockDumper, sort_keys=False))
                return
    raise AssertionError(f"no {kind} {name or ''} in {directory}")


def edit_envoy(directory: Path, fn: Callable[[dict[str, Any]], None]) -> None:
    def on_configmap(cm: dict[str, Any]) -> None:
        key = next(k for k in cm["data"] if k in ("envoy.yaml", "envoy.yml", "envoy.json"))
        boot = yaml.safe_load(cm["data"][key])
        fn(boot)
        cm["data"][key] = yaml.safe_dump(boot, sort_keys=False)

    for path in sorted(directory.glob("*.yaml")):
        if "static_resources" in path.read_text():
            for doc in yaml.safe_load_all(path.read_text()):
                if (doc or {}).get("kind") == "ConfigMap":
                    edit(directory, "ConfigMap", on_configmap, doc["metadata"]["name"])
                    return
    raise AssertionError("no Envoy ConfigMap")


def _route(boot: dict[str, Any]) -> dict[str, Any]:
    hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    return hcm["typed_config"]["route_config"]["virtual_hosts"][0]["routes"][0]


def _cluster(boot: dict[str, Any]) -> dict[str, Any]:
    name = _route(boot)["route"]["cluster"]
    return next(c for c in boot["static_resources"]["clusters"] if c["name"] == name)


def _trigger(so: dict[str, Any]) -> dict[str, Any]:
    return next(t for t in so["spec"]["triggers"] if t["type"] == "prometheus")


def _model_container(dep: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in dep["spec"]["template"]["spec"]["containers"] if "readinessProbe" in c)


def _target(directory: Path) -> str:
    for path in directory.glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if (doc or {}).get("kind") == "ScaledObject":
                return doc["spec"]["scaleTargetRef"]["name"]
    raise AssertionError("no ScaledObject")


def errors(directory: Path) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in lint(directory).findings:
        if f.severity == "error":
            out.setdefault(f.rule, []).append(f)
    return out


def test_reference_manifests_pass():
    result = lint(FIXTURES)
    assert [f for f in result.findings if f.severity == "error"] == []
    assert result.objects >= 6


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """The real `loadgate` entry point, in process (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_:
        main(["lint", *args])
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


def test_cli_passes_on_fixtures_and_json_is_machine_readable(capsys):
    code, out, err = run_cli(capsys, str(FIXTURES), "-o", "json")
    assert code == 0, out + err
    report = json.loads(out)
    assert report["ok"] is True and report["errors"] == 0
    assert {"lb-least-request", "retry-no-storm", "served-by-header"} <= set(report["rules"])


def test_cli_exit_1_on_errors_and_2_on_bad_input(k8s, tmp_path, capsys):
    edit_envoy(k8s, lambda b: _cluster(b).update(lb_policy="ROUND_ROBIN"))
    code, out, _ = run_cli(capsys, str(k8s))
    assert code == 1
    assert "error [lb-least-request]" in out and "fix: set lb_policy: LEAST_REQUEST" in out
    code, _, err = run_cli(capsys, str(tmp_path / "missing"))
    assert code == 2 and err.startswith("loadgate: error: ") and "not a directory" in err
    assert len(err.strip().splitlines()) == 1


def test_default_directory_is_fixtures_k8s(capsys, monkeypatch):
    monkeypatch.chdir(FIXTURES.parents[1])
    code, out, _ = run_cli(capsys)
    assert code == 0 and "loadgate lint: ok:" in out


# -- one broken manifest per rule -----------------------------------------------------------


def test_rule_lb_least_request(k8s):
    edit_envoy(k8s, lambda b: _cluster(b).update(lb_policy="ROUND_ROBIN"))
    (f,) = errors(k8s)["lb-least-request"]
    assert f.path.endswith(".lb_policy") and f.path.startswith("data[envoy.yaml].static_resources")
    # the line inside the ConfigMap's embedded bootstrap
    assert "lb_policy: ROUND_ROBIN" in Path(f.file).read_text().splitlines()[f.line - 1]


@pytest.mark.parametrize("value", [None, 50])
def test_rule_panic_threshold_zero(k8s, value):
    def breakit(b):
        if value is None:
            _cluster(b).pop("common_lb_config")
        else:
            _cluster(b)["common_lb_config"]["healthy_panic_threshold"]["value"] = value

    edit_envoy(k8s, breakit)
    (f,) = errors(k8s)["panic-threshold-zero"]
    assert f.path.endswith("common_lb_config.healthy_panic_threshold")
    assert ("default" in f.message) == (value is None)


def test_rule_breaker_needs_max_requests(k8s):
    edit_envoy(k8s, lambda b: _cluster(b)["circuit_breakers"]["thresholds"][0].pop("max_requests"))
    (f,) = errors(k8s)["breaker-max-requests"]
    assert "max_pending_requests alone does not bound HTTP/2" in f.message


def test_rule_keda_query_must_sum(k8s):
    def averaged(so):
        _trigger(so)["metadata"]["query"] = (
            'sum(envoy_cluster_upstream_rq_active{envoy_cluster_name="modelserver"})'
            " / count(nv_inference_pending_request_count)"
        )

    edit(k8s, "ScaledObject", averaged)
    (f,) = errors(k8s)["keda-query-aggregation"]
    assert f.path.endswith("metadata.query") and "divided twice" in f.message


def test_rule_keda_max_replicas(k8s):
    edit(k8s, "ScaledObject", lambda so: so["spec"].pop("maxReplicaCount"))
    (f,) = errors(k8s)["keda-max-replicas"]
    assert f.path == "spec.maxReplicaCount" and "100" in f.message


def test_rule_readiness_above_target(k8s):
    def low_limit(dep):
        c = _model_container(dep)
        for e in c.get("env", []):
            if e["name"] == "READY_MAX_QUEUE":
                e["value"] = "12"
        # a hard-coded flag would also do; keep the manifest's $(READY_MAX_QUEUE) indirection

    edit(k8s, "Deployment", low_limit, name=_target(k8s))
    (f,) = errors(k8s)["readiness-above-target"]
    assert "12 is not above the per-pod target 16" in f.message and f.path.endswith(".value")
    assert "'12'" in Path(f.file).read_text().splitlines()[f.line - 1]


def test_rule_retry_no_storm(k8s):
    def storm(b):
        _route(b)["route"]["retry_policy"].update(retry_on="5xx,reset", num_retries=10)

    edit_envoy(k8s, storm)
    found = errors(k8s)["retry-no-storm"]
    assert {f.path.rsplit(".", 1)[1] for f in found} == {"retry_on", "num_retries"}


def test_rule_served_by_header(k8s):
    def drop_header(b):
        route = _route(b)
        route.pop("response_headers_to_add", None)

    edit_envoy(k8s, drop_header)
    (f,) = errors(k8s)["served-by-header"]
    assert "%UPSTREAM_HOST%" in f.message


def _list_resource(directory: Path, name: str) -> None:
    kust = directory / "kustomization.yaml"
    data = yaml.safe_load(kust.read_text())
    if name not in data["resources"]:
        data["resources"].append(name)
        kust.write_text(yaml.safe_dump(data, sort_keys=False))


def test_rule_keda_metric_source_envoy_not_scraped(k8s):
    _list_resource(k8s, "prometheus.yaml")  # the annotation-based scrape config
    envoy = next(
        d["metadata"]["name"]
        for p in k8s.glob("*.yaml")
        for d in [x for x in yaml.safe_load_all(p.read_text()) if x]
        if d.get("kind") == "Deployment" and "envoy" in d["metadata"]["name"]
    )
    edit(
        k8s,
        "Deployment",
        lambda d: d["spec"]["template"]["metadata"]["annotations"].pop("prometheus.io/scrape"),
        name=envoy,
    )
    (f,) = errors(k8s)["keda-metric-source"]
    assert f.path == "spec.template.metadata.annotations" and "prometheus.io/scrape" in f.message


def test_rule_keda_metric_source_null_is_not_zero(k8s):
    edit(k8s, "ScaledObject", lambda so: _trigger(so)["metadata"].pop("ignoreNullValues", None))
    warned = [f for f in lint(k8s).findings if f.rule == "keda-metric-source"]
    assert [f.severity for f in warned] == ["warning"]
    assert warned[0].path.endswith("metadata.ignoreNullValues")


# -- the schema checks ------------------------------------------------------------------------


def test_schema_envoy_unknown_field(k8s):
    def typo(b):
        th = _cluster(b)["circuit_breakers"]["thresholds"][0]
        th["max_request"] = th.pop("max_requests")

    edit_envoy(k8s, typo)
    (f,) = errors(k8s)["envoy-schema"]
    assert f.path.endswith("circuit_breakers.thresholds[0].max_request")


def test_schema_kubernetes_unknown_field(k8s):
    edit(k8s, "Deployment", lambda d: d["spec"].update(replica=3), name=_target(k8s))
    (f,) = errors(k8s)["k8s-schema"]
    assert f.path == "spec" and "'replica' was unexpected" in f.message


def test_schema_scaled_object_unknown_field(k8s):
    edit(k8s, "ScaledObject", lambda so: so["spec"].update(maxReplicas=4))
    (f,) = errors(k8s)["keda-schema"]
    assert f.path == "spec.maxReplicas" and "unknown key" in f.message


def test_unlisted_manifest_is_reported(k8s):
    (k8s / "extra.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    warned = [f for f in lint(k8s).findings if f.rule == "kustomization-resources"]
    assert warned and warned[0].file.endswith("extra.yaml")


def test_not_a_directory_is_bad_input(tmp_path):
    with pytest.raises(UserError, match="not a directory"):
        lint(tmp_path / "nope")


@pytest.mark.parametrize(
    ("query", "divides"),
    [
        ('sum(envoy_cluster_upstream_rq_active{envoy_cluster_name="m"})', False),
        ("avg(envoy_cluster_upstream_rq_active)", True),
        ("avg by (pod) (nv_inference_pending_request_count)", True),
        ("avg_over_time(sum(envoy_cluster_upstream_rq_active)[1m:])", False),
        ("sum(x) / count(up{job='m'})", True),
        ("sum(x) / scalar(count(up))", True),
        ('sum(x) / on() kube_deployment_status_replicas{deployment="m"}', True),
        ("sum(rate(x[1m])) / 2", False),
    ],
)
def test_promql_per_pod_detection(query, divides):
    assert bool(per_pod(query)) is divides


def test_a_malformed_file_kustomization_does_not_list_is_an_error(k8s, capsys):
    (k8s / "stray.yaml").write_text("kind: Deployment\nmetadata: {name: x\n")
    code, out, _err = run_cli(capsys, str(k8s))
    assert code == 1, out
    assert "stray.yaml" in out and "malformed YAML" in out
    (k8s / "stray.yaml").write_text("kind: ConfigMap\napiVersion: v1\nmetadata: {name: x}\n")
    code, out, _err = run_cli(capsys, str(k8s))
    assert code == 0 and "not listed in" in out, "a valid unlisted file is only a warning"
