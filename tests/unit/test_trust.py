"""When figures can be trusted: load delivered, twin timekeeping, client timing; INVALID is a
verdict of its own (never PASS or FAIL), it reaches JUnit as an <error> and the exit code 3."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pandas as pd
import pytest

from loadgate.gate.junit import mark_invalid
from loadgate.gate.session import format_table
from loadgate.judge.trust import Trust, TrustLimits, assess
from loadgate.judge.verdict import check
from loadgate.report.summary import Summary
from loadgate.schema import encode_labels

LIMITS = TrustLimits()
GOOD_GENERATOR = {"valid": True, "invalid_reasons": [], "lag_p99_s": 0.004}


def rows(metric, times, values, source="prometheus", **labels):
    return pd.DataFrame(
        {"time": times, "source": source, "metric": metric,
         "labels": encode_labels(labels), "value": values}
    )  # fmt: skip


def timeline(loop_lag=0.01, poll_every=1.0, scrape_p99=1.0):
    t = [float(x) for x in range(0, 30)]
    return pd.concat(
        [
            rows("loadgate_event_loop_lag_seconds", t, [loop_lag] * len(t), pod="p"),
            rows(
                "autoscaler_metric",
                [i * poll_every for i in range(int(30 / poll_every))],
                [10.0] * int(30 / poll_every),
                source="autoscaler",
            ),
            rows("scrape_interval_p99_s", [30.0], [scrape_p99], interval="1s"),
        ],
        ignore_index=True,
    )


def trust(generator=GOOD_GENERATOR, drain=0.01, **tl) -> Trust:
    return assess(generator, pd.Series([drain] * 100), timeline(**tl), (0.0, 30.0), 1.0, LIMITS)


def test_a_healthy_run_is_trusted_and_its_figures_are_kept():
    t = trust()
    assert t.reasons("stack") == [] and t.reasons("client") == []
    assert t.figures["pod_loop_lag_p99_s"] == pytest.approx(0.01)
    assert t.figures["autoscaler_stretch_p99"] == pytest.approx(1.0)
    assert t.figures["scrape_interval_p99_s"] == 1.0


def test_a_starved_twin_invalidates_every_figure():
    for kw, words in (
        ({"loop_lag": 0.4}, "event loop lag"),
        ({"poll_every": 2.0}, "autoscaler polled late"),
        ({"scrape_p99": 3.0}, "Prometheus scraped late"),
    ):
        t = trust(**kw)
        assert t.whole and words in t.whole[0], kw
        assert t.reasons("stack") == t.reasons("client") == t.whole


def test_a_lagging_client_invalidates_only_the_clients_figures():
    t = trust(drain=2.0)
    assert t.reasons("stack") == []
    assert "off the wire late" in t.reasons("client")[0]
    lagging = {
        "valid": False,
        "invalid_reasons": ["send lag p99 80.0 ms > 50 ms"],
        "lag_p99_s": 0.08,
    }
    t = trust(generator=lagging)
    assert t.reasons("stack") == [] and t.reasons("client") == ["send lag p99 80.0 ms > 50 ms"]


def test_a_load_not_delivered_invalidates_everything():
    dropped = {"valid": False, "invalid_reasons": ["12 arrivals dropped (pool of 1000 full)"],
               "lag_p99_s": 0.01}  # fmt: skip
    assert trust(generator=dropped).whole == ["12 arrivals dropped (pool of 1000 full)"]
    late = {"valid": False, "invalid_reasons": ["send lag p99 3000.0 ms > 50 ms"], "lag_p99_s": 3.0}
    t = trust(generator=late)
    assert any("the load itself arrived reshaped" in r for r in t.whole)


def test_invalid_is_a_verdict_of_its_own():
    fail = check("fail_fast", "admitted_inflight_peak", 205, "<=", 175)
    invalid = check("fail_fast", "admitted_inflight_peak", 205, "<=", 175, untrusted=["starved"])
    ok_but_untrusted = check("balance", "buckets", 30, ">=", 15, untrusted=["starved"])
    assert (fail.status, fail.passed) == ("FAIL", False)
    assert (invalid.status, invalid.passed) == ("INVALID", False)
    assert ok_but_untrusted.status == "INVALID", "an untrusted PASS is not a PASS either"
    assert "INVALID: starved" in invalid.message
    table = format_table([fail, invalid])
    assert table.splitlines()[1].endswith("FAIL") and table.splitlines()[2].endswith("INVALID")


def test_summary_status_and_exit_codes():
    ok = check("balance", "buckets", 30, ">=", 15)
    fail = check("balance", "buckets", 1, ">=", 15)
    invalid = check("balance", "buckets", 1, ">=", 15, untrusted=["x"])
    base = {"run_id": "r", "scenario": "s", "stack": "twin"}
    assert Summary(**base, gates=[ok]).exit_code == 0
    assert Summary(**base, gates=[ok, invalid]).exit_code == 3
    assert Summary(**base, gates=[fail, invalid]).exit_code == 1, "a FAIL wins over INVALID"
    old = {"gate": "g", "figure": "f", "value": 1.0, "threshold": 2.0, "comparison": "<=",
           "passed": False, "message": "m"}  # fmt: skip
    assert Summary.model_validate({**base, "gates": [old]}).gates[0].status == "FAIL"


def test_junit_marks_invalid_gates_as_errors(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text(
        '<?xml version="1.0"?><testsuites><testsuite name="pytest" errors="0" failures="2" '
        'tests="3"><testcase name="test_fail_fast"><failure message="x">trace</failure>'
        '</testcase><testcase name="test_pod_kill"><failure message="y">t2</failure></testcase>'
        '<testcase name="test_keda_scale_up"/></testsuite></testsuites>'
    )
    assert mark_invalid(path, {"test_fail_fast": "the pods could not keep time"}) == 1
    suite = ET.parse(path).getroot().find("testsuite")
    assert (suite.get("failures"), suite.get("errors")) == ("1", "1")
    ff = suite.find("testcase[@name='test_fail_fast']")
    assert ff.find("failure") is None and "could not keep time" in ff.find("error").get("message")
    assert suite.find("testcase[@name='test_pod_kill']").find("failure") is not None
