"""Summary figures and the generator's validity verdict."""

import math

import pandas as pd
import pytest

from loadgate.traffic.scenario import Scenario
from loadgate.traffic.summary import format_table, progress_line, summarize

SC = Scenario.model_validate(
    {
        "name": "t",
        "arrival": "constant",
        "classes": [{"name": "cv", "model": "cv", "kind": "cv"}],
        "phases": [{"name": "steady", "duration_s": 10, "rate": 10}],
        "generator": {"max_lag_p99_s": 0.01},
    }
)


def frame(n=100, lag=0.001, status="OK"):
    t = [1000 + i * 0.1 for i in range(n)]
    return pd.DataFrame(
        {
            "intended": t,
            "start": [x + lag for x in t],
            "first_byte": [x + 0.05 for x in t],
            "end": [x + 0.1 for x in t],
            "cls": "cv",
            "model": "cv",
            "status": status,
            "served_by": "pod-0",
            "tokens": 0,
            "bytes": 10,
            "phase": "steady",
            "worker": "w",
        }
    )


def gen(dropped=0):
    return {"expected_arrivals": 100, "workers": {"w": {"scheduled": 100, "dropped": dropped}}}


def test_figures_from_intended():
    s = summarize(frame(), SC, gen())
    cv = s["classes"]["cv"]
    assert cv["count"] == 100 and cv["rate"] == pytest.approx(10)
    assert cv["latency_p50_s"] == pytest.approx(0.1) and cv["ttft_p99_s"] == pytest.approx(0.05)
    g = s["generator"]
    assert g["valid"] and g["achieved_ratio"] == pytest.approx(1.0)
    assert g["lag_p99_s"] == pytest.approx(0.001)
    assert "valid" in format_table(s)


def test_drops_or_lag_make_the_run_invalid():
    assert not summarize(frame(), SC, gen(dropped=1))["generator"]["valid"]
    lagging = summarize(frame(lag=0.5), SC, gen())["generator"]
    assert not lagging["valid"] and "lag p99" in lagging["invalid_reasons"][0]
    assert "INVALID" in format_table(summarize(frame(lag=0.5), SC, gen()))


def test_a_process_that_stopped_before_its_schedule_ended_makes_the_run_invalid():
    g = {
        "expected_arrivals": 100,
        "workers": {"a": {"scheduled": 50, "completed": True}, "b": {"scheduled": 20}},
    }
    g["workers"]["b"]["completed"] = False
    health = summarize(frame(70), SC, g)["generator"]
    assert not health["valid"]
    assert health["invalid_reasons"] == [
        "1 of 2 generator processes stopped before the end of their schedule (b)"
    ]
    # asked to stop early: a cut schedule is what was asked for, not a generator fault
    assert summarize(frame(70), SC, {**g, "stopped_early": True})["generator"]["valid"]


def test_rejections_counted_apart_from_errors():
    df = pd.concat([frame(50), frame(30, status="UNAVAILABLE"), frame(20, status="INTERNAL")])
    cv = summarize(df, SC, gen())["classes"]["cv"]
    assert (cv["ok"], cv["rejected"], cv["errors"]) == (50, 30, 20)


def test_empty_run():
    s = summarize(frame(0), SC, gen())
    assert s["total"]["count"] == 0 and s["total"]["latency_p50_s"] is None
    assert not math.isnan(s["duration_s"])


def test_distinct_error_messages_with_counts_most_frequent_first():
    df = frame(10)
    df["error"] = ""
    df.loc[0:5, ["status", "error"]] = ["UNAVAILABLE", "upstream connect error ... overflow"]
    df.loc[6:7, ["status", "error"]] = ["UNKNOWN", "parameter 'max_tokens' must be 1..100000"]
    df.loc[8, ["status", "error"]] = ["UNAVAILABLE", "no healthy upstream"]
    df.loc[9, "error"] = None  # a file written before the error column
    s = summarize(df, SC, {})
    assert s["total"]["error_messages"] == [
        {"status": "UNAVAILABLE", "message": "upstream connect error ... overflow", "count": 6},
        {"status": "UNKNOWN", "message": "parameter 'max_tokens' must be 1..100000", "count": 2},
        {"status": "UNAVAILABLE", "message": "no healthy upstream", "count": 1},
    ]
    assert s["classes"]["cv"]["error_messages"] == s["total"]["error_messages"]
    table = format_table(s)
    assert "errors by message:" in table
    assert "        6  UNAVAILABLE       upstream connect error ... overflow" in table
    # past the limit the rest are one entry
    from loadgate.traffic.summary import error_messages

    capped = error_messages(df, limit=1)
    assert capped[-1] == {"status": "", "message": None, "count": 3}
    assert "errors by message" not in format_table(summarize(frame(5), SC, {}))


def test_progress_names_the_scheduled_phase_then_draining():
    sc = Scenario.model_validate(
        {
            "name": "t",
            "arrival": "constant",
            "classes": [{"name": "cv", "model": "cv", "kind": "cv"}],
            "phases": [
                {"name": "warm", "duration_s": 10, "rate": 1},
                {"name": "peak", "duration_s": 20, "rate": 1},
            ],
        }
    )
    late = frame(n=8)  # rows of the first phase that finish late (long streams)
    late["phase"] = "warm"
    assert progress_line(late, 4, 3, sc).startswith("[    3/30s] phase warm: 2.0 calls/s")
    assert "phase peak" in progress_line(late, 4, 12, sc)  # the schedule's, not the rows'
    draining = progress_line(late, 4, 35, sc)
    assert draining.startswith("[   35s, 30s scheduled] draining in-flight calls: 2.0 calls/s")
    assert "phase" not in draining and "/30s]" not in draining
    assert progress_line(late.iloc[:0], 4, 40, sc).endswith("no call finished in the last 4s")


def test_a_worker_with_another_scenario_makes_the_run_invalid_and_is_named():
    # users.py: a worker whose scenario fingerprint differs from the master's sends nothing and
    # reports scenario_mismatch; the summary names it (end to end: test_traffic_distributed.py)
    g = gen()
    g["workers"]["host-b:42"] = {"scheduled": 0, "dropped": 0, "scenario_mismatch": True}
    health = summarize(frame(), SC, g)["generator"]
    assert not health["valid"]
    assert any(
        "1 worker(s) run a different scenario file" in r and "host-b:42" in r
        for r in health["invalid_reasons"]
    )
