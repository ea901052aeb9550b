"""What the report marks on its time axes and lists below them, and how it names pods."""

import pandas as pd

from loadgate.report.events import (
    Marker,
    kills_by_pod,
    merge_close,
    phases_from_samples,
    timeline_markers,
)
from loadgate.report.pods import pod_names, pods_table, served_by_name, short_names
from loadgate.schema import SAMPLE_COLUMNS, encode_labels

T0 = 1.7e9
A, B, C, D = (f"modelserver-5f7-{s}" for s in ("aaaaa", "bbbbb", "ccccc", "ddddd"))
ADDR = {A: "127.0.0.1:7001", B: "127.0.0.1:7002", C: "127.0.0.1:7003", D: "127.0.0.1:7004"}


def tl(rows) -> pd.DataFrame:
    """rows: (t, source, metric, labels, value) with t in s since T0."""
    return pd.DataFrame(
        [(T0 + t, src, m, encode_labels(lab), v) for t, src, m, lab, v in rows],
        columns=["time", "source", "metric", "labels", "value"],
    )


def ready(t, pod, v, source="twin"):
    return (t, source, "pod_ready", {"pod": pod, "address": ADDR[pod]}, v)


def kill_timeline() -> pd.DataFrame:
    """B SIGKILLed at 10 s by a chaos action (the twin records it too), D replaces it; A drops
    out of readiness 20-25 s; the autoscaler asks for 4 replicas at 30 s."""
    return tl(
        [
            *(ready(-5, p, 1) for p in (A, B, C)),
            (-3, "chaos", "experiment_start", {"name": "kill"}, 1),
            (9.9, "chaos", "method_start", {}, 1),
            (10.0, "chaos", "kill_pods", {"pod": B, "signal": "SIGKILL"}, 1),
            (10.001, "twin", "pod_event", {"pod": B, "reason": "Killed", "signal": "SIGKILL"}, 1),
            ready(9.95, B, 0),  # terminating: said by the kill
            ready(12.5, D, 1),
            ready(20.0, A, 0),
            ready(25.0, A, 1),
            (14.0, "chaos", "flood_start", {"target": "service", "tag": "f"}, 300),
            (17.0, "chaos", "flood_end", {"target": "service", "tag": "f"}, 300),
            (-5, "twin", "replicas_spec", {"deployment": "m"}, 3),
            (30.0, "twin", "replicas_spec", {"deployment": "m"}, 3),
            (30.5, "twin", "replicas_spec", {"deployment": "m"}, 4),
            (40.0, "chaos", "restore_replicas", {"name": "model deployment"}, 3),
            (45.0, "chaos", "experiment_end", {"name": "kill"}, 1),
        ]
    )


def test_markers_in_time_order_each_event_once():
    marks = timeline_markers(kill_timeline(), T0, T0 + 42)
    got = [(round(m.time - T0, 2), m.kind, m.label, m.pods, m.detail) for m in marks]
    assert got == [
        (9.9, "step", "method starts", (), ""),
        (10.0, "fault", "pod killed", (B,), "SIGKILL"),
        (12.5, "readiness", "ready", (D,), ""),
        (14.0, "fault", "flood", (), "300 calls at the service"),
        (20.0, "readiness", "not ready", (A,), ""),
        (25.0, "readiness", "ready again", (A,), ""),
        (30.5, "scaling", "replicas 3 \u2192 4", (), ""),
        (40.0, "step", "restore replicas", (), "to 3"),
    ]
    flood = marks[3]
    assert flood.end - T0 == 17.0
    # outside the load's window: not marked
    assert not [m for m in timeline_markers(kill_timeline(), T0 + 11, T0 + 13) if m.kind == "fault"]


def test_a_kill_only_the_platform_recorded_is_marked():
    """The pod-kill gate kills through the platform: the twin's pod event is the record."""
    t = tl(
        [
            *(ready(-5, p, 1) for p in (A, B)),
            (8.0, "twin", "pod_event", {"pod": A, "reason": "Killed", "signal": "SIGKILL"}, 1),
            (9.0, "twin", "pod_event", {"pod": B, "reason": "Started"}, 1),
        ]
    )
    marks = timeline_markers(t, T0, T0 + 20)
    assert [(m.label, m.pods, m.detail) for m in marks] == [("pod killed", (A,), "SIGKILL")]
    assert kills_by_pod(marks) == {A: (T0 + 8.0, "SIGKILL")}


def test_simultaneous_events_are_one_marker_naming_every_pod():
    marks = [
        Marker(1.0, "readiness", "ready", (A,)),
        Marker(1.4, "readiness", "ready", (B,)),
        Marker(1.8, "readiness", "ready", (C,)),
        Marker(3.5, "readiness", "ready", (D,)),
        Marker(3.6, "readiness", "not ready", (A,)),
    ]
    merged = merge_close(marks)
    assert [(m.time, m.label, m.pods) for m in merged] == [
        (1.0, "ready", (A, B, C)),
        (3.5, "ready", (D,)),
        (3.6, "not ready", (A,)),
    ]


def test_phases_are_spans_of_intended_sends_in_order():
    s = pd.DataFrame({"intended": [5.0, 6.0, 1.0, 2.0, 9.0], "phase": ["b", "b", "a", "a", ""]})
    assert phases_from_samples(s) == [("a", 1.0, 2.0), ("b", 5.0, 6.0)]


def test_pods_are_named_from_the_timeline():
    names = pod_names(kill_timeline())
    assert names["127.0.0.1:7002"] == B
    assert "127.0.0.1" not in names  # four pods share the IP: the port decides
    lone = pod_names(
        tl([(0, "kubernetes", "pod_ready", {"pod": A, "address": "10.1.2.3:8001"}, 1)])
    )
    assert lone == {"10.1.2.3:8001": A, "10.1.2.3": A}  # Envoy may name another port
    s = pd.DataFrame({"served_by": ["127.0.0.1:7002", "10.9.9.9:1", "", None]})
    assert served_by_name(s, names).tolist() == [B, "10.9.9.9:1", "", ""]


def test_short_names_drop_the_deployment_prefix():
    assert short_names([A, B]) == ("modelserver-5f7-", {A: "aaaaa", B: "bbbbb"})
    assert short_names(["web", "db"]) == ("", {"web": "web", "db": "db"})
    assert short_names([A]) == ("", {A: A})


def samples(rows) -> pd.DataFrame:
    """rows: (intended s, served_by pod, status)."""
    out = [
        {
            "intended": T0 + t,
            "start": T0 + t,
            "first_byte": T0 + t + 0.01,
            "end": T0 + t + 0.5,
            "cls": "cv",
            "model": "m",
            "status": st,
            "served_by": ADDR.get(pod, pod),
            "tokens": 0,
            "bytes": 1,
            "phase": "steady",
            "worker": "w0",
            "request_id": "",
            "error": "",
        }
        for t, pod, st in rows
    ]
    return pd.DataFrame(out, columns=SAMPLE_COLUMNS)


def test_pods_table_marks_the_killed_pod_and_the_new_one():
    s = samples(
        [
            (0.0, A, "OK"),
            (0.1, B, "OK"),
            (9.8, B, "INTERNAL"),
            (11.0, A, "OK"),
            (13.0, D, "OK"),
            (14.0, "10.9.9.9:1", "OK"),
        ]
    )
    marks = timeline_markers(kill_timeline(), T0, T0 + 42)
    rows = {r.name: r for r in pods_table(s, kill_timeline(), T0, kills_by_pod(marks))}
    assert list(rows) == [A, B, D, "10.9.9.9:1"]  # by first call
    b = rows[B]
    assert (b.address, b.ok, b.failed, b.killed_at, b.killed_how) == (
        "127.0.0.1:7002",
        1,
        1,
        10.0,
        "SIGKILL",
    )
    assert rows[D].new and not rows[A].new and rows[A].killed_at is None
    assert rows["10.9.9.9:1"].address == "10.9.9.9:1"
