"""Figures from the stack's own record: Envoy's access log lines are parsed, joined to the
client's rows by request id, and the gate's figures computed from them agree with the client's
view when the client keeps up, and stay true when it does not."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from loadgate import judge
from loadgate.judge.stack_view import drain_lag_s, stack_calls
from loadgate.observe.envoy_access import AccessLogTail, join_proxy, parse_access_log
from loadgate.schema import SAMPLE_COLUMNS

PODS = ["127.0.0.1:5001", "127.0.0.1:5002", "127.0.0.1:5003"]
MAX_REQUESTS = 150


def line(rid, start, dur_ms, upstream="127.0.0.1:5001", flags="-", status="OK", resp_ms=None):
    return json.dumps(
        {
            "start": f"{start:.6f}",
            "duration_ms": dur_ms,
            "response_ms": resp_ms,
            "upstream": upstream,
            "flags": flags,
            "grpc_status": status,
            "http_status": 200,
            "attempts": 1,
            "upstream_ms": None if flags == "UO" else "1",
            "request_id": rid,
            "path": "/inference.GRPCInferenceService/ModelInfer",
        }
    )


def test_access_log_lines_become_proxy_records():
    frame, bad = parse_access_log(
        [
            line("a-1", 100.0, 12, resp_ms=3),
            line("a-2", 100.5, 0, flags="UO", status="UNAVAILABLE"),
            "[2026-12-01 22:00:00][warning] not an access log line",
            "",
            json.dumps({"start": "-", "request_id": "x"}),
        ]
    )
    assert bad == 2, "Envoy's own log lines and a line without a start are counted, not parsed"
    assert list(frame["request_id"]) == ["a-1", "a-2"]
    ok, uo = frame.iloc[0], frame.iloc[1]
    assert ok["end"] == pytest.approx(100.012) and ok["first_byte"] == pytest.approx(100.003)
    assert uo["flags"] == "UO" and uo["grpc_status"] == "UNAVAILABLE"
    assert np.isnan(uo["first_byte"]) and np.isnan(uo["upstream_ms"])


def test_tail_reads_whole_lines_only_and_resumes(tmp_path):
    path = tmp_path / "access.log"
    path.write_text(line("r-1", 1.0, 1) + "\n" + line("r-2", 2.0, 1)[:30])  # half-flushed line
    tail = AccessLogTail(path)
    assert list(tail.read()["request_id"]) == ["r-1"]
    with path.open("a") as f:
        f.write(line("r-2", 2.0, 1)[30:] + "\n")
    assert list(tail.read()["request_id"]) == ["r-2"]
    assert tail.read().empty


def flood(client_lag_s: float, n: int = 400, seed: int = 5):
    """A flood at 100 calls/s of 2 s calls: the proxy admits at most MAX_REQUESTS at once and
    answers the rest UO in ~1 ms. The client sees each answer `client_lag_s` late."""
    rng = np.random.default_rng(seed)
    t = 1000.0 + np.arange(n) * 0.01
    proxy_rows, sample_rows = [], []
    active_ends: list[float] = []
    for i, t_in in enumerate(t):
        active_ends = [e for e in active_ends if e > t_in]
        rid = f"w-{i}"
        if len(active_ends) >= MAX_REQUESTS:
            p_end, status, upstream, flags = t_in + 0.001, "UNAVAILABLE", PODS[i % 3], "UO"
        else:
            p_end, status, upstream, flags = t_in + 2.0, "OK", PODS[i % 3], "-"
            active_ends.append(p_end)
        proxy_rows.append(line(rid, t_in, round((p_end - t_in) * 1000), upstream, flags, status))
        c_start = t_in - 0.0002
        sample_rows.append(
            {
                "intended": c_start, "start": c_start, "first_byte": np.nan,
                "end": p_end + 0.0003 + client_lag_s * rng.random(), "cls": "llm-short",
                "model": "llm", "status": status, "served_by": upstream, "tokens": 0,
                "bytes": 0, "phase": "flood", "worker": "w", "request_id": rid, "error": "",
            }
        )  # fmt: skip
    proxy, _ = parse_access_log(proxy_rows)
    return pd.DataFrame(sample_rows)[SAMPLE_COLUMNS], proxy


def test_breaker_figures_from_the_proxy_agree_with_a_client_that_keeps_up():
    samples, proxy = flood(client_lag_s=0.0)
    stack = judge.failfast(stack_calls(samples, proxy), phase="flood")
    client = judge.failfast(samples, phase="flood")
    assert stack.admitted_inflight_peak == MAX_REQUESTS
    # the client sees an answer a fraction of a millisecond after the proxy sent it
    assert MAX_REQUESTS <= client.admitted_inflight_peak <= MAX_REQUESTS + 2
    assert stack.rejected == client.rejected > 0, "the rejected calls never reached a pod"
    assert stack.reject_p99_ms == pytest.approx(1.0, abs=0.01)
    assert client.reject_p99_ms == pytest.approx(stack.reject_p99_ms, abs=0.6)


def test_a_lagging_client_inflates_its_own_figures_but_not_the_stacks():
    samples, proxy = flood(client_lag_s=1.5)
    stack = judge.failfast(stack_calls(samples, proxy), phase="flood")
    client = judge.failfast(samples, phase="flood")
    assert stack.admitted_inflight_peak == MAX_REQUESTS, "the breaker's bound, from Envoy's record"
    assert client.admitted_inflight_peak > MAX_REQUESTS + 20, (
        "late answers look like more in flight"
    )
    assert stack.reject_p99_ms < 2 and client.reject_p99_ms > 500
    lag = drain_lag_s(samples, proxy)
    assert lag.quantile(0.99) > 1.0 and lag.min() >= 0


def test_stack_view_takes_the_proxys_pod_status_and_times_and_marks_unseen_calls():
    samples, proxy = flood(client_lag_s=0.0, n=200)
    never = samples.iloc[:1].assign(request_id="never-logged", status="DEADLINE_EXCEEDED")
    view = stack_calls(pd.concat([samples, never], ignore_index=True), proxy)
    rejected = view[view["request_id"].isin(proxy.loc[proxy["flags"] == "UO", "request_id"])]
    assert (rejected["served_by"] == "").all(), "overflow: a local reply, sent to no pod"
    assert (rejected["status"] == "UNAVAILABLE").all()
    logged = view[view["seen"]]
    joined = join_proxy(samples, proxy).set_index("request_id")
    assert np.allclose(logged["start"], joined.loc[logged["request_id"], "proxy_start"])
    unseen = view[~view["seen"]]
    assert list(unseen["request_id"]) == ["never-logged"]
    assert unseen["status"].item() == "DEADLINE_EXCEEDED", "the client's view when Envoy has none"


def test_balance_picks_come_from_where_the_proxy_sent_each_call():
    """Calls alternate over 3 pods with one pod holding long calls: the proxy's record of the
    pod each call went to is what the busiest-pick share counts."""
    rows, prox = [], []
    for i in range(300):
        t = 10.0 + i * 0.05
        pod = PODS[i % 3]
        dur = 3.0 if pod == PODS[0] else 0.02
        rid = f"b-{i}"
        prox.append(line(rid, t, round(dur * 1000), pod))
        rows.append(
            {"intended": t, "start": t, "first_byte": t, "end": t + dur + 0.5, "cls": "c",
             "model": "llm", "status": "OK", "served_by": "", "tokens": 1, "bytes": 1,
             "phase": "steady", "worker": "w", "request_id": rid, "error": ""}
        )  # fmt: skip
    proxy, _ = parse_access_log(prox)
    samples = pd.DataFrame(rows)[SAMPLE_COLUMNS]
    stack = judge.balance(stack_calls(samples, proxy), pods=PODS)
    assert stack.picks_judged > 250
    assert stack.busiest_pick_share == pytest.approx(1 / 3, abs=0.02), "round robin: 1 in 3"
    assert np.isnan(judge.balance(samples, pods=PODS).busiest_pick_share), (
        "the client's rows here name no pod: only the proxy's record can say"
    )
