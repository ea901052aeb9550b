import numpy as np
import pandas as pd
import pytest

from loadgate.judge import check, generator_health, latency_percentiles, status_rates


def open_loop(rate=100.0, seconds=10.0, lag_s=0.002):
    t = np.arange(0, seconds, 1 / rate)
    cls = np.where(np.arange(len(t)) % 2 == 0, "llm-short", "cv")
    lat = np.where(cls == "cv", 0.01, 0.2)
    return pd.DataFrame(
        {"intended": t, "start": t + lag_s, "end": t + lag_s + lat, "cls": cls, "status": "OK"}
    )


def test_percentiles_per_class_per_window():
    p = latency_percentiles(open_loop(), window=5.0)
    assert list(p.columns) == ["time", "cls", "count", "p50", "p90", "p99"]
    assert len(p) == 4
    cv = p[p["cls"] == "cv"]
    assert cv["p99"].to_numpy() == pytest.approx([12.0, 12.0])
    assert cv["count"].sum() == 500
    own = latency_percentiles(open_loop(), window=5.0, latency_from="start")
    assert own[own["cls"] == "cv"]["p50"].to_numpy() == pytest.approx([10.0, 10.0])


def test_status_rates_per_window():
    s = open_loop()
    s.loc[s["intended"] >= 5, "status"] = np.where(
        np.arange((s["intended"] >= 5).sum()) % 2 == 0, "UNAVAILABLE", "OK"
    )
    r = status_rates(s, window=5.0)
    assert list(r["rejected_share"]) == [0.0, 0.5]


def test_generator_health_rate_lag_and_drops():
    s = open_loop(rate=100.0)
    s = pd.concat([s, s.iloc[:3].assign(status="DROPPED")], ignore_index=True)
    h = generator_health(s, target_rate=100.0)
    assert h.sent == 1000 and h.dropped == 3
    assert h.achieved_rate == pytest.approx(100.0, rel=1e-6)
    assert h.rate_ratio == pytest.approx(1.0, rel=1e-6)
    assert h.lag_p99_ms == pytest.approx(2.0)


def test_generator_health_of_joined_runs_leaves_the_pause_between_them_out():
    first, second = open_loop(rate=100.0), open_loop(rate=100.0)
    second[["intended", "start", "end"]] += 100.0  # a second run 90 s after the first ended
    joined = pd.concat([first, second], ignore_index=True)
    whole = generator_health(joined, target_rate=100.0)
    assert whole.achieved_rate < 20  # the pause counted as sending time
    gates = pd.Series(["a"] * len(first) + ["b"] * len(second))
    h = generator_health(joined, target_rate=100.0, segments=gates)
    assert h.achieved_rate == pytest.approx(100.0, rel=1e-6) and h.sent == 2000
    assert h.duration_s == pytest.approx(2 * 9.99)


def test_a_generator_that_falls_behind_shows_it():
    s = open_loop(rate=100.0)
    s["start"] = s["intended"] + np.linspace(0, 0.5, len(s))  # lag grows to 500 ms
    h = generator_health(s, target_rate=100.0)
    assert not check("generator", "lag_p99_ms", h.lag_p99_ms, "<=", 5, "ms").passed


def test_check_semantics():
    assert check("g", "f", 1.0, "<=", 1.0).passed
    assert not check("g", "f", 1.01, "<=", 1.0).passed
    assert check("g", "f", 0, "==", 0).passed
    assert not check("g", "f", float("nan"), ">=", 0).passed
    v = check("g", "f", None, "<", 1)
    assert not v.passed and v.value is None
