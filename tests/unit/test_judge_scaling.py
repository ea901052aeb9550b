import numpy as np
import pandas as pd
import pytest

from loadgate.judge import check, demanded_replicas, replicas_frame, scaling
from loadgate.schema import encode_labels

TARGET = 16.0  # in flight per pod the synthetic autoscaler aims at


def test_demand_is_ceil_of_sum_over_target():
    assert list(demanded_replicas([0, 1, 16, 16.0000000001, 17, 48], 16)) == [0, 1, 1, 1, 2, 3]


def load(total_by_second):
    """Calls of 1 s each so the in-flight during second k is total_by_second[k]."""
    starts = np.concatenate([np.full(int(n), float(k)) for k, n in enumerate(total_by_second)])
    return pd.DataFrame({"start": starts, "end": starts + 1.0, "served_by": "p"})


def ready_timeline(points, metric="replicas_ready"):
    return pd.DataFrame(
        {
            "time": [t for t, _ in points],
            "source": "twin",
            "metric": metric,
            "labels": encode_labels({"deployment": "model"}),
            "value": [v for _, v in points],
        }
    )


# 10 s at 20 in flight (2 pods fit), then 60 in flight (4 pods) for 50 s
DEMAND = [20] * 10 + [60] * 50


def test_scale_up_reaching_capacity_is_timed():
    tl = ready_timeline([(0, 2), (16, 3), (22, 4)])
    f = replicas_frame(load(DEMAND), tl, TARGET, bucket=1.0)
    assert list(f["demanded"][:12]) == [2] * 10 + [4, 4]
    r = scaling(f, max_replicas=5)
    assert r.crossed_at == 10.0
    assert r.time_to_first_scale_s == 6.0
    assert r.time_to_capacity_s == 12.0
    assert r.max_ready == 4 and not r.above_max
    assert r.replica_seconds == pytest.approx(2 * 16 + 3 * 6 + 4 * 38)
    assert check("scale_up", "time_to_capacity_s", r.time_to_capacity_s, "<=", 30, "s").passed


def test_scaling_that_never_happens_is_caught():
    r = scaling(replicas_frame(load(DEMAND), ready_timeline([(0, 2)]), TARGET), max_replicas=5)
    assert r.crossed_at == 10.0
    assert r.time_to_first_scale_s is None and r.time_to_capacity_s is None
    v = check("scale_up", "time_to_capacity_s", r.time_to_capacity_s, "<=", 30, "s")
    assert not v.passed and "could not be measured" in v.message


def test_capacity_is_capped_by_max_replicas_and_overshoot_is_caught():
    f = replicas_frame(load(DEMAND), ready_timeline([(0, 2), (15, 3), (40, 6)]), TARGET)
    capped = scaling(f, max_replicas=3)
    assert capped.time_to_capacity_s == 5.0  # 3 is all it may get
    assert capped.above_max
    assert not check("scale_up", "max_ready", capped.max_ready, "<=", 3).passed


def test_demand_from_a_timeline_metric():
    tl = pd.concat(
        [
            ready_timeline([(0, 1), (8, 2)]),
            ready_timeline([(0, 10), (5, 30), (30, 10)], metric="envoy_cluster_upstream_rq_active"),
        ]
    )
    f = replicas_frame(load([1] * 40), tl, TARGET, demand_metric="envoy_cluster_upstream_rq_active")
    r = scaling(f)
    assert r.crossed_at == 5.0 and r.time_to_capacity_s == 3.0 and r.peak_demand == 2
