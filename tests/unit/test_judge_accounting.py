import pandas as pd
import pytest

from loadgate.judge import accounting
from loadgate.schema import encode_labels

STATUSES = (
    ["OK"] * 90
    + ["UNAVAILABLE"] * 5
    + ["RESOURCE_EXHAUSTED"] * 2
    + [
        "DEADLINE_EXCEEDED",
        "CANCELLED",
        "INTERNAL",
        "DROPPED",
    ]
)


def samples(statuses=STATUSES):
    n = len(statuses)
    return pd.DataFrame(
        {
            "start": [float(i) for i in range(n)],
            "end": [i + 0.5 for i in range(n)],
            "status": statuses,
        }
    )


def counter(points):
    return pd.DataFrame(
        {
            "time": [t for t, _ in points],
            "source": "prometheus",
            "metric": "envoy_cluster_upstream_rq_total",
            "labels": encode_labels({"envoy_cluster_name": "model"}),
            "value": [v for _, v in points],
        }
    )


def test_every_call_is_one_outcome():
    r = accounting(samples())
    assert (r.sent, r.ok, r.rejected, r.timeouts, r.cancelled, r.errors, r.dropped) == (
        100,
        90,
        7,
        1,
        1,
        1,
        1,
    )
    assert r.balanced and r.proxy_delta is None


def test_a_lost_outcome_unbalances():
    r = accounting(samples(STATUSES[:-1] + [None]))
    assert r.unaccounted == 1 and not r.balanced


def test_proxy_counter_with_a_reset_matches():
    r = accounting(samples(), counter([(-5, 1000), (40, 1040), (50, 3), (120, 63)]))
    assert r.proxy_delta == 103  # 40 before the reset, 3 from zero, 60 after
    assert r.proxy_mismatch == pytest.approx(0.03)


def test_proxy_that_excludes_its_overflow_replies():
    r = accounting(samples(), counter([(0, 0), (200, 93)]), proxy_counts_rejected=False)
    assert r.proxy_mismatch == 0
