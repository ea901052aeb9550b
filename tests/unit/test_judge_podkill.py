"""Pod-kill figures on synthetic samples and timelines: which failures the kill explains, when
the replica is back, when p99 of short requests recovers."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from loadgate.judge.podkill import kill_events, pod_address, podkill
from loadgate.schema import SAMPLE_COLUMNS, encode_labels

KILL = 100.0
VICTIM, ADDR, OTHER = "model-abc-x1", "127.0.0.1:9001", "127.0.0.1:9002"


def call(intended, end, status="OK", served_by=OTHER, cls="llm-short"):
    return {
        "intended": intended, "start": intended, "first_byte": intended + 0.01, "end": end,
        "cls": cls, "model": "llm", "status": status, "served_by": served_by, "tokens": 50,
        "bytes": 100, "phase": "steady", "worker": "w0", "request_id": "", "error": "",
    }  # fmt: skip


def steady(t0=80.0, t1=120.0, step=0.25, lat=0.1):
    return [call(t, t + lat) for t in pd.Series(range(int((t1 - t0) / step))) * step + t0]


def timeline(rows=()):
    base = [
        (90.0, "twin", "pod_ready", {"pod": VICTIM, "address": ADDR}, 1),
        (90.0, "twin", "replicas_ready", {"deployment": "model"}, 3),
        (KILL, "chaos", "kill_pods", {"pod": VICTIM, "signal": "SIGKILL"}, 1),
        (KILL + 0.4, "twin", "replicas_ready", {"deployment": "model"}, 2),
        (KILL + 3.0, "twin", "replicas_ready", {"deployment": "model"}, 3),
        *rows,
    ]
    return pd.DataFrame(
        [
            {"time": t, "source": s, "metric": m, "labels": encode_labels(lab), "value": float(v)}
            for t, s, m, lab, v in base
        ]  # fmt: skip
    )


def frame(rows):
    return pd.DataFrame(rows)[SAMPLE_COLUMNS]


def test_kill_event_and_victim_address_come_from_the_timeline():
    tl = timeline()
    assert kill_events(tl) == [(KILL, VICTIM)]
    assert pod_address(tl, VICTIM) == ADDR and pod_address(tl, "nope") == ""


def test_only_calls_in_flight_on_the_victim_are_explained_by_the_kill():
    rows = steady()
    rows.append(call(KILL - 0.5, KILL + 0.01, "UNAVAILABLE", served_by=ADDR))  # on the victim
    rows.append(call(KILL - 0.2, KILL + 0.02, "INTERNAL", served_by=""))  # headers never came
    r = podkill(frame(rows), timeline())
    assert (r.victim, r.kill_time) == (VICTIM, KILL)
    assert r.failed == 2 and r.failed_attributable == 2 and r.failed_elsewhere == 0
    assert r.victim_inflight == 1 and r.accounted


def test_failures_on_other_pods_or_long_after_the_kill_count_against_the_stack():
    rows = steady()
    rows.append(call(KILL - 0.5, KILL + 0.5, "UNAVAILABLE", served_by=OTHER))  # another pod
    rows.append(call(KILL + 5.0, KILL + 5.1, "UNAVAILABLE", served_by=""))  # after the grace
    rows.append(call(KILL - 5.0, KILL - 4.9, "INTERNAL", served_by=ADDR))  # before the kill
    r = podkill(frame(rows), timeline(), grace_s=1.0)
    assert r.failed == 3 and r.failed_attributable == 0 and r.failed_elsewhere == 3


def test_end_of_run_cancellations_and_drops_are_not_failures():
    rows = steady() + [call(119.0, 121.0, "CANCELLED"), call(119.5, 119.5, "DROPPED")]
    r = podkill(frame(rows), timeline())
    assert r.failed == 0 and r.failed_elsewhere == 0


def test_replica_back_time_and_never_back():
    r = podkill(frame(steady()), timeline())
    assert r.replica_back_s == pytest.approx(3.0)
    tl = timeline()
    tl = tl[~((tl["metric"] == "replicas_ready") & (tl["time"] == KILL + 3.0))]
    assert math.isnan(podkill(frame(steady()), tl).replica_back_s)


def test_p99_recovery_is_the_first_window_after_which_latency_stays_in_bound():
    rows = steady(lat=0.1)
    # 4 s of slow short calls after the kill, then back to normal
    rows = [
        call(x["intended"], x["intended"] + (2.0 if KILL <= x["intended"] < KILL + 4 else 0.1))
        for x in rows
    ]
    r = podkill(frame(rows), timeline(), window_s=2.0)
    assert r.baseline_p99_ms == pytest.approx(100.0, abs=1)
    assert r.p99_recovery_s == pytest.approx(4.0)
    slow_to_end = [
        call(x["intended"], x["intended"] + (2.0 if x["intended"] >= KILL else 0.1))
        for x in steady()
    ]
    assert math.isnan(podkill(frame(slow_to_end), timeline()).p99_recovery_s)


def test_no_kill_event_is_an_error():
    tl = timeline()
    with pytest.raises(ValueError, match="no kill_pods"):
        podkill(frame(steady()), tl[tl["source"] != "chaos"])


def test_calls_on_new_pods_counts_only_ok_calls_to_unknown_pods_after_the_kill():
    from loadgate.judge.podkill import calls_on_new_pods

    rows = steady()
    rows.append(call(KILL + 5, KILL + 5.1, served_by="127.0.0.1:9009"))  # the replacement
    rows.append(call(KILL + 6, KILL + 6.1, "UNAVAILABLE", served_by="127.0.0.1:9009"))
    rows.append(call(KILL - 5, KILL - 4.9, served_by="127.0.0.1:9008"))  # before the kill
    assert calls_on_new_pods(frame(rows), {ADDR, OTHER}, KILL) == 1


def test_a_single_later_spike_does_not_undo_a_recovery():
    rows = []
    for x in steady():
        t = x["intended"]
        slow = KILL <= t < KILL + 2 or KILL + 10 <= t < KILL + 12  # the kill, then one spike
        rows.append(call(t, t + (2.0 if slow else 0.1)))
    r = podkill(frame(rows), timeline(), window_s=2.0, hold=2)
    assert r.p99_recovery_s == pytest.approx(2.0)
