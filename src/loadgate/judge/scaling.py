"""Scale-up: demanded replicas (KEDA AverageValue: ceil(sum in-flight / target per pod)) against
ready replicas over time, the time from demand crossing capacity to ready capacity, the cap, and
the replica-seconds spent (the cost)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from loadgate.judge import names
from loadgate.judge.inflight import TOTAL, grid, inflight_mean, span
from loadgate.judge.timeline import series, step_at


def demanded_replicas(total_inflight, target: float) -> np.ndarray:
    """ceil(sum in-flight / target), as the HPA computes an AverageValue metric."""
    v = np.asarray(total_inflight, dtype=float)
    # a hair of tolerance so 32.0000001 from float sums does not demand a third pod
    return np.ceil(v / target - 1e-9)


def replicas_frame(
    samples: pd.DataFrame,
    timeline: pd.DataFrame,
    target: float,
    bucket: float = 1.0,
    ready_metric: str = names.REPLICAS_READY_METRIC,
    ready_source: str | tuple[str, ...] | None = None,
    demand_metric: str | None = None,
    demand_source: str | tuple[str, ...] | None = None,
    t0: float | None = None,
    t1: float | None = None,
    spec_metric: str = names.REPLICAS_SPEC_METRIC,
) -> pd.DataFrame:
    """Per bucket: time, inflight (time-weighted, all calls), demanded (ceil(inflight / target):
    the autoscaler's in-flight target per pod, from the deployment's facts; NaN without one),
    ready and spec replicas (last observation at the bucket's start; NaN before the first). With demand_metric, in-flight comes from that timeline metric (summed
    over its series) instead of the samples."""
    lo, hi = span(samples)
    t0 = lo if t0 is None else t0
    t1 = hi if t1 is None else t1
    edges = grid(t0, t1, bucket)[:-1]
    if demand_metric is None:
        inflight = inflight_mean(samples, bucket, t0, t1, by=None)[TOTAL].to_numpy()
    else:
        d = series(timeline, demand_metric, source=demand_source).groupby("time")["value"].sum()
        inflight = step_at(d.index.to_numpy(), d.to_numpy(), edges, before=0.0)
    r = series(timeline, ready_metric, source=ready_source).groupby("time")["value"].sum()
    ready = step_at(r.index.to_numpy(), r.to_numpy(), edges)
    sp = series(timeline, spec_metric, source=ready_source).groupby("time")["value"].sum()
    return pd.DataFrame(
        {
            "time": edges,
            "inflight": inflight,
            "demanded": demanded_replicas(inflight, target),
            "ready": ready,
            "spec": step_at(sp.index.to_numpy(), sp.to_numpy(), edges),
        }
    )


@dataclass(frozen=True)
class ScalingResult:
    initial_ready: float
    max_ready: float
    max_replicas: int | None
    above_max: bool  # ready replicas ever exceeded maxReplicaCount
    peak_demand: float  # highest demanded replicas (uncapped)
    crossed_at: float | None  # first time demand exceeded ready capacity
    time_to_first_scale_s: float | None  # crossing -> ready replicas first grew
    time_to_capacity_s: float | None  # crossing -> ready >= min(demand at crossing, max)
    replica_seconds: float  # integral of ready replicas over the analysed span


def scaling(frame: pd.DataFrame, max_replicas: int | None = None) -> ScalingResult:
    """Figures from replicas_frame(). Demand and readiness are compared bucket by bucket."""
    f = frame.dropna(subset=["ready"])
    if f.empty:
        return ScalingResult(
            float("nan"), float("nan"), max_replicas, False, float("nan"), None, None, None, 0.0
        )
    t = f["time"].to_numpy()
    ready = f["ready"].to_numpy()
    demand = f["demanded"].to_numpy()
    step = float(np.diff(frame["time"]).min()) if len(frame) > 1 else 1.0
    cross = np.flatnonzero(demand > ready)
    crossed_at = first_scale = capacity = None
    if len(cross):
        i = int(cross[0])
        crossed_at = float(t[i])
        grew = np.flatnonzero((ready > ready[i]) & (t >= t[i]))
        if len(grew):
            first_scale = float(t[grew[0]] - t[i])
        want = demand[i] if max_replicas is None else min(demand[i], max_replicas)
        met = np.flatnonzero((ready >= want) & (t >= t[i]))
        if len(met):
            capacity = float(t[met[0]] - t[i])
    max_ready = float(ready.max())
    return ScalingResult(
        initial_ready=float(ready[0]),
        max_ready=max_ready,
        max_replicas=max_replicas,
        above_max=bool(max_replicas is not None and max_ready > max_replicas),
        peak_demand=float(demand.max()),
        crossed_at=crossed_at,
        time_to_first_scale_s=first_scale,
        time_to_capacity_s=capacity,
        replica_seconds=float(ready.sum() * step),
    )
