import numpy as np
import pandas as pd

from loadgate.judge import check, readiness, transitions
from loadgate.schema import encode_labels

A, B = "10.0.0.1:8001", "10.0.0.2:8001"


def ready_rows(pod, addr, points):
    return pd.DataFrame(
        {
            "time": [t for t, _ in points],
            "source": "twin",
            "metric": "pod_ready",
            "labels": encode_labels({"pod": pod, "address": addr}),
            "value": [v for _, v in points],
        }
    )


def queue_rows(pod, times, values):
    return pd.DataFrame(
        {
            "time": times,
            "source": "prometheus",
            "metric": "nv_inference_pending_request_count",
            "labels": encode_labels({"pod": pod, "model": "llm"}),
            "value": values,
        }
    )


def timeline(drop_b=True):
    t = np.arange(0, 30, 0.5)
    q_a = np.where((t >= 9.5) & (t < 14), 60, 10)  # over the limit of 50 from 9.5 s
    q_b = np.where((t >= 20) & (t < 22), 70, 5)
    b_points = [(0, 1), (20.5, 0), (23, 1)] if drop_b else [(0, 1)]
    return pd.concat(
        [
            ready_rows("pod-a", A, [(0, 1), (5, 1), (10, 0), (12, 0), (18, 1), (25, 1)]),
            ready_rows("pod-b", B, b_points),
            queue_rows("pod-a", t, q_a),
            queue_rows("pod-b", t, q_b),
        ],
        ignore_index=True,
    )


def samples(starts_on_a):
    starts_b = np.arange(0, 30, 0.1)
    starts_b = starts_b[(starts_b < 20.5) | (starts_b >= 23)]  # the proxy honours b's drop
    starts = np.concatenate([starts_on_a, starts_b])
    return pd.DataFrame(
        {
            "start": starts,
            "end": starts + 0.05,
            "served_by": [A] * len(starts_on_a) + [B] * len(starts_b),
        }
    )


def test_transitions_collapse_repeated_observations():
    tr = transitions(timeline())
    a = tr[tr["pod"] == "pod-a"]
    assert list(a["time"]) == [0, 10, 18] and list(a["ready"]) == [True, False, True]
    assert set(tr["address"]) == {A, B}


def test_healthy_drop_out_passes():
    s = samples(np.concatenate([np.arange(0, 10, 0.5), [10.4], np.arange(18, 30, 0.5)]))
    r = readiness(s, timeline(), probe_interval=1.0, queue_limit=50)
    assert r.drops == 2 and r.pods_dropped == ("pod-a", "pod-b")
    assert r.returned == 2
    assert r.calls_to_not_ready == 0
    assert r.calls_in_grace == 1  # 10.4 s: within one probe interval of the drop
    assert r.overloads == 2 and r.overloads_not_dropped == 0
    assert r.max_queue == 70
    assert r.not_ready_s == 8.0 + 2.5


def test_calls_sent_to_a_not_ready_pod_are_counted_and_fail():
    s = samples(np.array([11.5, 13.0, 17.9, 18.1]))
    r = readiness(s, timeline(), probe_interval=1.0)
    assert r.calls_to_not_ready == 3
    assert r.offending_pods == {"pod-a": 3}
    assert not check("readiness", "calls_to_not_ready", r.calls_to_not_ready, "==", 0).passed


def test_an_overloaded_pod_that_stays_ready_is_caught():
    r = readiness(samples(np.array([1.0])), timeline(drop_b=False), probe_interval=1.0)
    assert r.overloads == 2 and r.overloads_not_dropped == 1
    assert r.pods_dropped == ("pod-a",)


def test_no_readiness_events_means_nothing_dropped():
    tl = timeline()
    tl = tl[tl["metric"] != "pod_ready"]
    r = readiness(samples(np.array([1.0])), tl)
    assert r.drops == 0 and r.overloads_not_dropped == 2
    assert not check("readiness", "pods_dropped", r.drops, ">=", 1).passed


def test_calls_labelled_with_the_pod_name_are_mapped_too():
    s = samples(np.array([1.0]))
    s = pd.concat([s, pd.DataFrame({"start": [15.0], "end": [15.1], "served_by": ["pod-a"]})])
    r = readiness(s, timeline(), probe_interval=1.0)
    assert r.calls_to_not_ready == 1 and r.offending_pods == {"pod-a": 1}


def test_return_grace_forgives_calls_just_before_the_recorded_return():
    # 17.9 is 0.1 s before pod-a's recorded return to ready (18): counted by default,
    # forgiven with a 0.25 s return grace; 13.0 stays a violation either way.
    s = samples(np.array([13.0, 17.9]))
    assert readiness(s, timeline(), probe_interval=1.0).calls_to_not_ready == 2
    assert readiness(s, timeline(), probe_interval=1.0, return_grace=0.25).calls_to_not_ready == 1
