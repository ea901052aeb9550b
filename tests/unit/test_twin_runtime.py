"""Pure pieces of the running twin: HAProxy config, Prometheus rules and targets, pod naming,
kill selection, the event log, and the autoscaler runner (with fakes, no processes)."""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from loadgate.schema import decode_labels, timeline_table
from loadgate.twin import haproxy, prometheus
from loadgate.twin.control import BadRequest, pick_victims
from loadgate.twin.eventlog import EventLog
from loadgate.twin.scaler import ScalerRunner
from loadgate.twin.spec import AutoscalerSpec, ScalingPolicy, ScalingRules, TwinSpec
from loadgate.twin.supervisor import PodProc, Supervisor, pod_name, template_hash


def spec(**kw) -> TwinSpec:
    base = dict(deployment="model", replicas=3, cluster_name="model", lb_policy="least_request")
    return TwinSpec(**{**base, **kw})


def cfg(s: TwinSpec) -> str:
    return haproxy.render_config(s, haproxy.ProxyPorts(grpc=1111, stats=2222), Path("/r/h.sock"))


# -- HAProxy ---------------------------------------------------------------------------------


def test_haproxy_balance_follows_lb_policy():
    assert "balance leastconn" in cfg(spec(lb_policy="least_request"))
    assert "balance roundrobin" in cfg(spec(lb_policy="round_robin"))


def test_haproxy_breaker_counts_backend_streams_and_fails_fast():
    text = cfg(spec(max_requests=200))
    rule = next(line for line in text.splitlines() if "http-request deny" in line)
    assert "deny_status 503" in rule and "grpc-status 14" in rule
    assert rule.rstrip().endswith(f"if {{ be_conn({haproxy.BACKEND}) ge 200 }}")
    assert "http-request deny" not in cfg(spec(max_requests=None)), "no limit when None"


def test_haproxy_h2c_health_checks_header_and_exporter():
    text = cfg(spec(readiness_period_s=0.5, served_by_header="x-upstream-host"))
    assert "bind 127.0.0.1:1111 proto h2" in text
    assert "option httpchk GET /v2/health/ready" in text
    assert re.search(r"check check-proto h1 inter 500ms fall 1 rise 1", text)
    assert "http-response set-header x-upstream-host %[srv_name]" in text
    assert "bind 127.0.0.1:2222" in text and "prometheus-exporter" in text
    assert "stats socket /r/h.sock" in text and "level admin" in text
    assert "timeout server 15m" in text, "long enough for 2000-token streams"


def test_haproxy_retries_follow_envoys_retry_policy():
    text = cfg(spec(retry_on=["unavailable", "reset", "connect-failure"], num_retries=2))
    assert "retries 2" in text and "option redispatch 1" in text  # another pod each time
    assert "retry-on conn-failure empty-response" in text
    assert "retries 0" in cfg(spec(retry_on=["connect-failure"], num_retries=0))
    assert "retry-on" not in cfg(spec(retry_on=["unavailable"], num_retries=2))


class _FakeSocketRuntime(haproxy.Runtime):
    def __init__(self, replies: dict[str, str]) -> None:
        super().__init__(Path("/nonexistent"))
        self.replies, self.sent = replies, []

    def command(self, cmd: str) -> str:
        self.sent.append(cmd)
        return next((v for k, v in self.replies.items() if cmd.startswith(k)), "")


def test_runtime_add_server_spells_out_h2_and_check_port():
    rt = _FakeSocketRuntime({"add server": "New server registered.\n"})
    rt.add_server("127.0.0.1:5000", 5001)
    add = rt.sent[0]
    assert add.startswith("add server pods/127.0.0.1:5000 127.0.0.1:5000 proto h2 check")
    assert "port 5001" in add and "check-proto h1" in add
    assert rt.sent[1:] == ["enable health pods/127.0.0.1:5000", "enable server pods/127.0.0.1:5000"]


def test_runtime_refusal_is_an_error_and_busy_delete_is_retried():
    rt = _FakeSocketRuntime({"add server": "Already exists a server with the same name.\n"})
    with pytest.raises(haproxy.RuntimeError_):
        rt.add_server("127.0.0.1:5000", 5001)
    busy = _FakeSocketRuntime({"del server": "Server still has connections attached to it.\n"})
    assert busy.delete_server("127.0.0.1:5000") is False
    assert _FakeSocketRuntime({"del server": "Server deleted.\n"}).delete_server("a:1") is True


def test_runtime_parses_show_stat():
    csv_text = (
        "# pxname,svname,qcur,scur,status\n"
        "pods,127.0.0.1:5000,0,3,UP\npods,127.0.0.1:6000,0,0,DOWN\npods,BACKEND,0,3,UP\n"
        "grpc_in,FRONTEND,,4,OPEN\n"
    )
    rt = _FakeSocketRuntime({"show stat": csv_text})
    rows = rt.stat()
    assert [(r["svname"], r["status"]) for r in rows] == [
        ("127.0.0.1:5000", "UP"),
        ("127.0.0.1:6000", "DOWN"),
    ]
    assert rt.backend_sessions() == 3


# -- Prometheus ------------------------------------------------------------------------------


def test_recording_rules_publish_envoy_names_with_the_cluster_label():
    rules = prometheus.recording_rules("modelserver")["groups"][0]["rules"]
    by_name = {r["record"]: r for r in rules}
    for name in (
        "envoy_cluster_upstream_rq_active",
        "envoy_cluster_upstream_rq_pending_active",
        "envoy_cluster_upstream_rq_pending_overflow",
        "envoy_cluster_upstream_rq_total",
        "envoy_cluster_membership_healthy",
    ):
        assert by_name[name]["labels"] == {"envoy_cluster_name": "modelserver"}
    assert "haproxy_backend_current_sessions" in by_name["envoy_cluster_upstream_rq_active"]["expr"]
    assert "requests_denied" in by_name["envoy_cluster_upstream_rq_pending_overflow"]["expr"]


def test_prometheus_files_scrape_every_second_with_file_sd(tmp_path):
    path = prometheus.write_files(tmp_path, "c", "127.0.0.1:9")
    conf = yaml.safe_load(path.read_text())
    assert conf["global"]["scrape_interval"] == "1s"
    jobs = {j["job_name"]: j for j in conf["scrape_configs"]}
    assert jobs["pods"]["file_sd_configs"][0]["files"] == [str(tmp_path / "pods.json")]
    assert jobs["haproxy"]["static_configs"][0]["targets"] == ["127.0.0.1:9"]
    assert "&id" not in (tmp_path / "rules.yml").read_text(), "no YAML anchors"
    assert json.loads((tmp_path / "pods.json").read_text()) == []


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


def test_missing_binary_is_one_line_with_a_hint(monkeypatch, tmp_path):
    from loadgate.errors import UserError
    from loadgate.twin.stack import Twin

    monkeypatch.setenv("PATH", str(tmp_path))  # neither haproxy nor prometheus on PATH
    with pytest.raises(
        UserError, match=r"'haproxy' not found on PATH: install it with `make setup`"
    ):
        Twin.up(spec(), tmp_path / "run")
    assert not (tmp_path / "run").exists(), "nothing started, nothing written"
