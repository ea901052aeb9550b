"""The KEDA/HPA maths as tables: each row is a case an off-by-one or a swapped min/max would fail."""

from __future__ import annotations

import pytest

from loadgate.twin.autoscaler import (
    Autoscaler,
    average_value_replicas,
    is_active,
    rate_limit,
    scale_down_limit,
    scale_up_limit,
    stabilize,
    value_replicas,
)
from loadgate.twin.spec import AutoscalerSpec, ScalingPolicy, ScalingRules


def rules(window=0.0, select="Max", *policies):
    return ScalingRules(
        stabilization_window_s=window,
        select_policy=select,
        policies=[ScalingPolicy(type=t, value=v, period_s=p) for t, v, p in policies],
    )


def spec(**kw) -> AutoscalerSpec:
    base = dict(
        name="ms",
        min_replicas=3,
        max_replicas=6,
        polling_interval_s=15,
        cooldown_period_s=300,
        query="q",
        threshold=16,
        ignore_null_values=False,
        scale_up=rules(0, "Max", ("Pods", 2, 15)),
        scale_down=rules(60, "Max", ("Pods", 1, 30)),
    )
    base.update(kw)
    return AutoscalerSpec(**base)


# --- metric -> recommendation -----------------------------------------------------------------


@pytest.mark.parametrize(
    "value, threshold, current, expected",
    [
        (48, 16, 3, 3),  # exactly on target
        (52, 16, 3, 3),  # ratio 1.083: within the 0.1 tolerance
        (54, 16, 3, 4),  # ratio 1.125: ceil(3.375)
        (64, 16, 3, 4),  # exactly 4 pods' worth: no extra pod
        (65, 16, 3, 5),  # just above 4 pods' worth: ceil
        (44, 16, 3, 3),  # ratio 0.917: within tolerance (raw would also be 3)
        (40, 16, 4, 3),  # ratio 0.625: ceil(2.5)
        (0, 16, 3, 0),  # idle: recommendation 0 (the clamp to min comes later)
        (200, 16, 3, 13),  # far above: ceil(12.5); the clamp to max comes later
        (5, 16, 0, 1),  # from zero: no ratio to the current count
    ],
)
def test_average_value(value, threshold, current, expected):
    assert average_value_replicas(value, threshold, current) == expected


@pytest.mark.parametrize(
    "value, threshold, current, ready, expected",
    [
        (16, 16, 3, 3, 3),  # on target
        (17, 16, 3, 3, 3),  # ratio 1.0625: within tolerance
        (20, 16, 3, 3, 4),  # ceil(1.25 * 3 = 3.75)
        (8, 16, 4, 4, 2),  # ceil(0.5 * 4)
        (20, 16, 4, 2, 3),  # the HPA multiplies by READY pods: ceil(1.25 * 2 = 2.5)
        (32, 16, 3, 3, 6),  # exactly double
        (32, 16, 0, 0, 2),  # from zero: ceil(ratio)
    ],
)
def test_value(value, threshold, current, ready, expected):
    assert value_replicas(value, threshold, current, ready) == expected


def test_tolerance_boundary_is_inclusive():
    # 0.25 is exact in binary floating point, so the boundary itself is tested: |ratio - 1| == tol
    assert average_value_replicas(5, 4, 1, tolerance=0.25) == 1
    assert average_value_replicas(5.01, 4, 1, tolerance=0.25) == 2
    assert value_replicas(5, 4, 2, 2, tolerance=0.25) == 2
    assert value_replicas(3, 4, 2, 2, tolerance=0.25) == 2  # 0.75: lower boundary
    assert value_replicas(2.99, 4, 2, 2, tolerance=0.25) == 2  # ceil(1.495)


@pytest.mark.parametrize(
    "value, activation, active",
    [(0, 0, False), (0.001, 0, True), (5, 5, False), (5.5, 5, True)],
)
def test_activation_is_strictly_greater(value, activation, active):
    assert is_active(value, activation) is active


# --- behavior: policies, stabilization, clamps ------------------------------------------------


@pytest.mark.parametrize(
    "current, ups, downs, r, now, expected",
    [
        (3, [], [], rules(0, "Max", ("Pods", 2, 15)), 100, 5),
        (3, [], [], rules(0, "Max", ("Percent", 100, 15)), 100, 6),
        (3, [], [], rules(0, "Max", ("Percent", 50, 15)), 100, 5),  # ceil(4.5)
        (3, [], [], rules(0, "Max", ("Pods", 2, 15), ("Percent", 100, 15)), 100, 6),
        (3, [], [], rules(0, "Min", ("Pods", 2, 15), ("Percent", 100, 15)), 100, 5),
        (3, [], [], rules(0, "Disabled", ("Pods", 2, 15)), 100, 3),
        # +2 at t=90 counts within the 15 s period: the period started at 3 pods, not 5
        (5, [(90, 2)], [], rules(0, "Max", ("Pods", 2, 15)), 100, 5),
        # exactly one period later the event no longer counts (strictly newer than now - period)
        (5, [(85, 2)], [], rules(0, "Max", ("Pods", 2, 15)), 100, 7),
        # a scale-down inside the period gives that room back
        (4, [], [(95, 1)], rules(0, "Max", ("Pods", 1, 15)), 100, 6),
    ],
)
def test_scale_up_limit(current, ups, downs, r, now, expected):
    assert scale_up_limit(current, ups, downs, r, now) == expected


@pytest.mark.parametrize(
    "current, downs, r, now, expected",
    [
        (6, [], rules(0, "Max", ("Pods", 1, 30)), 100, 5),
        (6, [], rules(0, "Max", ("Percent", 50, 30)), 100, 3),
        (5, [], rules(0, "Max", ("Percent", 30, 30)), 100, 3),  # int(3.5): truncated, not ceil
        (6, [], rules(0, "Max", ("Pods", 1, 30), ("Percent", 50, 30)), 100, 3),  # Max change
        (6, [], rules(0, "Min", ("Pods", 1, 30), ("Percent", 50, 30)), 100, 5),  # Min change
        (6, [], rules(0, "Disabled", ("Pods", 1, 30)), 100, 6),
        (5, [(80, 1)], rules(0, "Max", ("Pods", 1, 30)), 100, 5),  # one already removed
        (5, [(70, 1)], rules(0, "Max", ("Pods", 1, 30)), 100, 4),  # period over
    ],
)
def test_scale_down_limit(current, downs, r, now, expected):
    assert scale_down_limit(current, [], downs, r, now) == expected


@pytest.mark.parametrize(
    "current, desired, history, now, up_w, down_w, expected",
    [
        (5, 2, [], 60, 0, 30, 2),  # empty history: as recommended
        (5, 2, [(40, 6)], 60, 0, 30, 5),  # a higher recommendation in the window holds current
        (5, 2, [(40, 4)], 60, 0, 30, 4),  # ... or the highest recent one if below current
        (5, 2, [(30, 6)], 60, 0, 30, 2),  # exactly window-old: outside (strictly newer)
        (3, 6, [(55, 4)], 60, 10, 0, 4),  # scale-up window: lowest recent recommendation
        (3, 6, [(55, 2)], 60, 10, 0, 3),  # ... never below current
        (3, 6, [(55, 2)], 60, 0, 0, 6),  # scale-up window 0: immediate
        (3, 6, [(50, 4)], 60, 10, 0, 6),  # exactly window-old: outside the up window too
    ],
)
def test_stabilize(current, desired, history, now, up_w, down_w, expected):
    assert stabilize(current, desired, history, now, up_w, down_w) == expected


@pytest.mark.parametrize(
    "current, desired, up_limit, down_limit, expected",
    [
        (3, 7, 5, 3, (5, "ScaleUpLimit")),
        (3, 9, 8, 3, (6, "TooManyReplicas")),  # max 6 binds before the policy
        (3, 5, 5, 3, (5, "DesiredWithinRange")),
        (6, 1, 6, 5, (5, "ScaleDownLimit")),
        (4, 1, 4, 2, (3, "TooFewReplicas")),  # min 3 binds before the policy
        (5, 2, 5, 7, (5, "ScaleDownLimit")),  # a limit above current never scales up
        (4, 4, 6, 3, (4, "DesiredWithinRange")),
    ],
)
def test_rate_limit_and_clamps(current, desired, up_limit, down_limit, expected):
    assert rate_limit(current, desired, 3, 6, up_limit, down_limit) == expected


# --- the stateful controller ------------------------------------------------------------------


def run(a: Autoscaler, steps, current):
    """Feed (now, value) pairs, applying each decision; return the decisions."""
    out = []
    for now, value in steps:
        d = a.decide(now, value, current)
        current = d.applied
        out.append(d)
    return out


def test_scale_up_is_rate_limited_and_capped_at_max():
    a = Autoscaler(spec())
    ds = run(a, [(0, 200), (15, 200), (30, 200)], 3)
    assert [d.applied for d in ds] == [5, 6, 6]  # +2 per 15 s, then maxReplicaCount
    assert ds[0].desired == 13 and ds[0].reason == "ScaleUpLimit"
    assert ds[2].reason == "TooManyReplicas"


def test_scale_down_waits_for_window_then_one_pod_per_period():
    a = Autoscaler(spec())
    steps = [(0, 96)] + [(t, 0) for t in range(15, 181, 15)]
    ds = run(a, steps, 6)
    applied = [d.applied for d in ds]
    # t=0 wants 6; recommendations of 0 only win once that 6 is no longer strictly newer than
    # now - 60 s (t=60), then one pod per 30 s period down to minReplicaCount 3.
    assert applied[:4] == [6, 6, 6, 6]  # t = 0..45
    assert applied[4] == 5  # t = 60
    assert applied[5] == 5  # t = 75: the period (30 s) still holds the last removal
    assert applied[6] == 4  # t = 90
    assert applied[7] == 4  # t = 105
    assert applied[8] == 3 and applied[-1] == 3  # t = 120 and after: never below min
    assert ds[1].reason == "ScaleDownStabilized" and ds[5].reason == "ScaleDownLimit"


def test_within_tolerance_does_not_scale():
    d = Autoscaler(spec()).decide(0, 50, 3)
    assert (d.desired, d.applied, d.reason) == (3, 3, "within_tolerance")


def test_hpa_acts_once_per_sync_period_keda_every_polling_interval():
    a = Autoscaler(spec(polling_interval_s=5))
    assert a.interval_s == 5
    ds = run(a, [(t, 200) for t in range(0, 31, 5)], 3)
    hpa = [d.time for d in ds if d.actor == "hpa"]
    assert hpa == [0, 15, 30]
    assert all(d.applied == d.current for d in ds if d.actor != "hpa")


def test_time_scale_shrinks_windows_and_periods():
    a = Autoscaler(spec(), time_scale=0.1)
    assert a.interval_s == pytest.approx(1.5)
    steps = [(0, 96)] + [(round(t * 0.1, 3), 0) for t in range(15, 181, 15)]
    assert [d.applied for d in run(a, steps, 6)][3:5] == [6, 5]  # the 60 s window is 6 s here


def test_current_outside_min_max_is_corrected_first():
    a = Autoscaler(spec())
    assert a.decide(0, 0, 8).applied == 6
    b = Autoscaler(spec())
    d = b.decide(0, 1000, 1)
    assert (d.applied, d.reason) == (3, "below_min")


def test_null_metric_is_an_error_unless_ignore_null_values():
    d = Autoscaler(spec(ignore_null_values=False)).decide(0, None, 5)
    assert (d.applied, d.reason) == (5, "metric_error")
    # ignoreNullValues true: an empty result is 0 load (KEDA's documented default).
    a = Autoscaler(spec(ignore_null_values=True, scale_down=rules(0, "Max", ("Percent", 100, 15))))
    d = a.decide(0, None, 5)
    assert (d.desired, d.applied) == (0, 3)


def test_scale_to_and_from_zero_with_activation_and_cooldown():
    a = Autoscaler(spec(min_replicas=0, activation_threshold=10, cooldown_period_s=300))
    d = a.decide(0, 5, 0)  # below activation: stays at zero
    assert d.applied == 0
    d = a.decide(15, 11, 0)  # active: KEDA scales 0 -> max(min, 1)
    assert (d.applied, d.actor, d.reason) == (1, "keda", "activated")
    d = a.decide(30, 0, 1)  # inactive, but within cooldown: the HPA keeps >= 1
    assert d.applied == 1
    d = a.decide(315, 0, 1)  # 300 s after the last active poll: not yet (strictly later)
    assert d.applied == 1
    d = a.decide(330, 0, 1)
    assert (d.applied, d.reason) == (0, "deactivated")


def test_activation_from_zero_goes_to_min_replicas_when_min_positive():
    a = Autoscaler(spec(min_replicas=2))
    assert a.decide(0, 1, 0).applied == 2


def test_value_metric_type_uses_ready_pods():
    a = Autoscaler(spec(metric_type="Value", scale_up=rules(0, "Max", ("Pods", 10, 15))))
    d = a.decide(0, 20, 4, ready_replicas=2)
    assert (d.desired, d.applied) == (3, 3)  # no history yet: nothing in the window holds it
    b = Autoscaler(spec(metric_type="Value"))
    assert b.decide(0, 20, 4, ready_replicas=4).desired == 5  # ceil(1.25 * 4)


def test_decision_is_frozen():
    d = Autoscaler(spec()).decide(0, 48, 3)
    with pytest.raises(AttributeError):
        d.applied = 4  # type: ignore[misc]


# --- the Prometheus query as KEDA runs it -----------------------------------------------------


def _vector(*values):
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": {}, "value": [0, str(v)]} for v in values],
        },
    }


@pytest.mark.parametrize(
    "body, expected",
    [(_vector(42.5), 42.5), (_vector(), None), (_vector("NaN"), None)],
)
def test_prometheus_instant_value(httpserver, body, expected):
    from loadgate.twin.autoscaler import prometheus_instant_value

    httpserver.expect_request("/api/v1/query", query_string={"query": "sum(x)"}).respond_with_json(
        body
    )
    assert prometheus_instant_value(httpserver.url_for("/"), "sum(x)", timeout=5) == expected


def test_prometheus_instant_value_refuses_several_elements(httpserver):
    from loadgate.twin.autoscaler import prometheus_instant_value

    httpserver.expect_request("/api/v1/query").respond_with_json(_vector(1, 2))
    with pytest.raises(ValueError, match="2 elements"):
        prometheus_instant_value(httpserver.url_for("/"), "x", timeout=5)
