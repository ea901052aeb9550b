import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from loadgate.judge import crosscheck, inflight_at, inflight_mean
from loadgate.schema import encode_labels

PODS = ["10.0.0.1:8001", "10.0.0.2:8001", "10.0.0.3:8001"]

calls = st.lists(
    st.tuples(
        st.floats(0, 20, allow_nan=False),
        st.floats(0, 5, allow_nan=False),
        st.sampled_from(PODS),
    ),
    min_size=1,
    max_size=60,
)


def frame(rows):
    return pd.DataFrame(
        {
            "start": [r[0] for r in rows],
            "end": [r[0] + r[1] for r in rows],
            "served_by": [r[2] for r in rows],
        }
    )


@settings(max_examples=60, deadline=None)
@given(calls, st.lists(st.floats(-1, 26, allow_nan=False), min_size=1, max_size=30))
def test_inflight_at_equals_brute_force_count(rows, times):
    got = inflight_at(frame(rows), times, pods=PODS)
    for pod in PODS:
        for t, v in zip(times, got[pod], strict=True):
            want = sum(1 for s, d, p in rows if p == pod and s <= t < s + d)
            assert v == want


@settings(max_examples=60, deadline=None)
@given(calls, st.sampled_from([0.25, 1.0, 3.0]))
def test_inflight_mean_equals_overlap_per_bucket(rows, bucket):
    got = inflight_mean(frame(rows), bucket, 0.0, 25.0, pods=PODS)
    for pod in PODS:
        for b0, v in zip(got.index, got[pod], strict=True):
            b1 = b0 + bucket
            overlap = sum(max(0.0, min(b1, s + d) - max(b0, s)) for s, d, p in rows if p == pod)
            assert abs(v - overlap / bucket) < 1e-6


def test_unfinished_call_counts_until_the_last_instant_and_unknown_pod_is_skipped():
    s = pd.DataFrame(
        {"start": [0.0, 1.0, 0.5], "end": [4.0, np.nan, 1.0], "served_by": ["a", "b", ""]}
    )
    got = inflight_at(s, [3.5])
    assert list(got.columns) == ["a", "b"]
    assert got.loc[3.5, "b"] == 1


def _timeline(times, values):
    return pd.DataFrame(
        {
            "time": times,
            "source": "prometheus",
            "metric": "envoy_cluster_upstream_rq_active",
            "labels": encode_labels({"envoy_cluster_name": "model"}),
            "value": values,
        }
    )


def test_crosscheck_agrees_with_a_true_metric_and_not_with_a_wrong_one():
    rng = np.random.default_rng(1)
    start = np.sort(rng.uniform(0, 60, 800))
    s = pd.DataFrame({"start": start, "end": start + rng.exponential(2.0, 800), "served_by": "a"})
    times = np.arange(1.0, 60.0, 1.0)
    truth = inflight_at(s, times, by=None)["total"].to_numpy()
    good = crosscheck(s, _timeline(times, truth), "envoy_cluster_upstream_rq_active")
    assert good.points == len(times)
    assert good.relative_error == 0 and good.correlation > 0.999
    wrong = crosscheck(
        s, _timeline(times, rng.permutation(truth)), "envoy_cluster_upstream_rq_active"
    )
    assert wrong.relative_error > 0.1 and wrong.correlation < 0.8
