"""Envoy admin parsers on real-format samples (tests/data/envoy/, Envoy 1.3x output layout)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from loadgate.errors import UserError
from loadgate.observe import envoy, promtext
from loadgate.platform.base import Pod

DATA = Path(__file__).resolve().parents[1] / "data" / "envoy"
CLUSTERS = (DATA / "clusters.txt").read_text()
STATS = (DATA / "stats_prometheus.txt").read_text()


def test_clusters_per_host_rq_active_and_health():
    status = envoy.parse_clusters(CLUSTERS)
    assert set(status) == {"modelserver", "envoy_admin"}
    ms = status["modelserver"]
    assert {a: h.rq_active for a, h in ms.hosts.items()} == {
        "10.244.1.12:8001": 14,
        "10.244.1.13:8001": 16,
        "10.244.2.7:8001": 0,
    }
    bad = ms.hosts["10.244.2.7:8001"]
    assert not bad.healthy and bad.health_flags == "/failed_active_hc"
    assert ms.hosts["10.244.1.12:8001"].hostname.startswith("modelserver-headless.")
    assert ms.circuit_breakers["default_priority"]["max_requests"] == 48
    assert ms.circuit_breakers["default_priority"]["max_pending_requests"] == 16
    assert ms.settings["added_via_api"] == "false"


def test_rq_active_by_host_and_unknown_cluster():
    assert envoy.rq_active_by_host(CLUSTERS, "envoy_admin") == {"127.0.0.1:9901": 1}
    with pytest.raises(UserError, match="no cluster 'nope'"):
        envoy.rq_active_by_host(CLUSTERS, "nope")


def test_clusters_ipv6_host_lines():
    text = (
        "m::default_priority::max_requests::8\n"
        "m::[fd00:10:244::5]:8001::rq_active::7\n"
        "m::[fd00:10:244::5]:8001::health_flags::healthy\n"
    )
    ms = envoy.parse_clusters(text)["m"]
    assert ms.hosts["[fd00:10:244::5]:8001"].rq_active == 7
    assert ms.circuit_breakers["default_priority"]["max_requests"] == 8


def test_stats_prometheus_cluster_series():
    samples = promtext.parse(STATS, "envoy")
    s = envoy.cluster_stats(samples, "modelserver")
    assert s["rq_active"] == 30  # the sum of the hosts' rq_active in clusters.txt
    assert s["rq_pending_overflow"] == 1287  # counter printed without _total, kept as is
    assert s["rq_total"] == 46045
    assert s["membership_healthy"] == 2 and s["breaker_rq_open"] == 0
    # the response-code tagged counter stays a separate series, not merged into _total
    codes = promtext.select(samples, "envoy_cluster_upstream_rq", envoy_cluster_name="modelserver")
    assert {x.labels["envoy_response_code"]: x.value for x in codes} == {"200": 44722, "503": 36}
    assert promtext.value(samples, "envoy_server_live") == 1


def test_stats_histogram_and_per_endpoint_series():
    samples = promtext.parse(STATS, "envoy")
    inf = promtext.select(samples, "envoy_cluster_upstream_rq_time_bucket", le="+Inf")
    assert inf[0].value == 44758
    assert envoy.endpoint_rq_active(samples, "modelserver")["10.244.1.13:8001"] == 16
    with pytest.raises(UserError, match="no cluster 'other'"):
        envoy.cluster_stats(samples, "other")


@pytest.mark.parametrize(
    ("line", "name", "labels", "value"),
    [
        ('a_b{x="1",y="two"} 3', "a_b", {"x": "1", "y": "two"}, 3.0),
        ("a{} 1", "a", {}, 1.0),
        ("a 2 1700000000000", "a", {}, 2.0),
        ('a{p="q\\"r\\\\s"} +Inf', "a", {"p": 'q"r\\s'}, float("inf")),
        ('a{x="1",} 4', "a", {"x": "1"}, 4.0),
    ],
)
def test_promtext_lines(line, name, labels, value):
    s = promtext.parse_line(line)
    assert (s.name, s.labels, s.value) == (name, labels, value)


@pytest.mark.parametrize("bad", ['a{x="1" 3', "a{x=1} 3", "a", "a b", '{x="1"} 2'])
def test_promtext_rejects_malformed(bad):
    with pytest.raises(UserError, match="line 2: not Prometheus text format"):
        promtext.parse("# TYPE a gauge\n" + bad + "\n", "envoy")


def test_served_by_maps_to_pod_names():
    pods = [
        Pod("modelserver-7c9d8f6b5d-4xk2p", "10.244.1.12:8001", True, 1.0),
        Pod("modelserver-7c9d8f6b5d-9qwzt", "10.244.1.13:8001", True, 1.0),
        Pod("modelserver-7c9d8f6b5d-pending", "", False, None),
    ]
    names = envoy.pod_names_by_address(pods)
    served = pd.Series(["10.244.1.12:8001", "10.244.1.13:9000", "10.9.9.9:8001", None, ""])
    assert envoy.name_served_by(served, names).tolist() == [
        "modelserver-7c9d8f6b5d-4xk2p",
        "modelserver-7c9d8f6b5d-9qwzt",  # other port, same pod IP
        "10.9.9.9:8001",  # unknown stays visible rather than dropped
        "",
        "",
    ]


def test_envoy_admin_fetch_and_errors(httpserver):
    httpserver.expect_request("/clusters").respond_with_data(CLUSTERS)
    httpserver.expect_request("/stats/prometheus").respond_with_data("oops{", status=200)
    admin = envoy.EnvoyAdmin(httpserver.url_for("/"))
    assert admin.clusters()["modelserver"].hosts["10.244.1.12:8001"].rq_active == 14
    with pytest.raises(UserError, match="stats/prometheus line 1"):
        admin.stats()
    with pytest.raises(UserError, match="cannot reach Envoy admin"):
        envoy.EnvoyAdmin("http://127.0.0.1:9", timeout=2).clusters()


# -- the same series through Prometheus ---------------------------------------------------------

RQ_ACTIVE = 'sum(envoy_cluster_upstream_rq_active{envoy_cluster_name="modelserver"})'


def test_prometheus_instant_and_range(httpserver):
    from loadgate.observe.prometheus import Prometheus

    httpserver.expect_request("/api/v1/query", query_string={"query": RQ_ACTIVE}).respond_with_json(
        {
            "status": "success",
            "data": {
                "resultType": "vector",
                "result": [{"metric": {}, "value": [1764129766.5, "30"]}],
            },
        }
    )
    httpserver.expect_request("/api/v1/query_range").respond_with_json(
        {
            "status": "success",
            "data": {
                "resultType": "matrix",
                "result": [
                    {
                        "metric": {"envoy_cluster_name": "modelserver"},
                        "values": [[1764129760, "12"], [1764129761, "NaN"]],
                    }
                ],
            },
        }
    )
    prom = Prometheus(httpserver.url_for("/"))
    assert prom.value(RQ_ACTIVE) == 30.0
    df = prom.range(RQ_ACTIVE, 1764129760, 1764129761, step=1)
    assert list(df["value"].iloc[:1]) == [12.0] and df["value"].isna().iloc[1]
    assert df["labels"].iloc[0] == '{"envoy_cluster_name":"modelserver"}'
    assert set(df["source"]) == {"prometheus"}


def test_prometheus_errors_are_one_line(httpserver):
    from loadgate.observe.prometheus import Prometheus

    httpserver.expect_request("/api/v1/query").respond_with_json(
        {"status": "error", "errorType": "bad_data", "error": 'parse error: unexpected "}"'},
        status=400,
    )
    prom = Prometheus(httpserver.url_for("/"))
    with pytest.raises(UserError, match=r"failed: parse error: unexpected"):
        prom.value("sum(x})")
    with pytest.raises(UserError, match="cannot reach Prometheus"):
        Prometheus("http://127.0.0.1:9", timeout=2).value("up")
