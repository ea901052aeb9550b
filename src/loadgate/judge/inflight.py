"""Per-pod in-flight requests over time, computed from the samples, and a cross-check against a
metric series from the timeline.

A request is in flight on a pod during [start, end). Both functions work on sorted start/end
arrays with `searchsorted` and prefix sums, so their cost is O(n log n) per pod, with no loop over
requests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from loadgate.judge.timeline import series

TOTAL = "total"


def _ends(samples: pd.DataFrame) -> np.ndarray:
    """End times; a request that never ended is in flight until the last observed instant."""
    end = samples["end"].to_numpy(dtype=float)
    if np.isnan(end).any():
        last = np.nanmax(np.concatenate([end, samples["start"].to_numpy(dtype=float)]))
        end = np.where(np.isnan(end), last, end)
    return end


def _groups(samples: pd.DataFrame, by: str | None, pods=None) -> dict[str, pd.DataFrame]:
    """Split samples per pod. Rows without a pod ("" or missing) are skipped when splitting.
    Unfinished requests are filled before splitting, so they run to the run's last instant."""
    if samples["end"].isna().any():
        samples = samples.assign(end=_ends(samples))
    if by is None:
        return {TOTAL: samples}
    known = samples[samples[by].notna() & (samples[by] != "")]
    groups = {str(k): g for k, g in known.groupby(by, sort=True)}
    for p in pods or ():
        groups.setdefault(str(p), known.iloc[0:0])
    if pods is not None:
        groups = {str(p): groups[str(p)] for p in pods}
    return groups


def grid(t0: float, t1: float, bucket: float) -> np.ndarray:
    """Bucket edges t0, t0+bucket, ... covering [t0, t1]."""
    if bucket <= 0:
        raise ValueError("bucket must be > 0")
    n = max(1, math.ceil((t1 - t0) / bucket - 1e-9))
    return t0 + bucket * np.arange(n + 1)


def span(samples: pd.DataFrame) -> tuple[float, float]:
    """First start and last end of the samples."""
    if samples.empty:
        return (0.0, 0.0)
    return float(samples["start"].min()), float(np.nanmax(_ends(samples)))


def inflight_at(
    samples: pd.DataFrame, times, by: str | None = "served_by", pods=None
) -> pd.DataFrame:
    """In-flight count per pod at each instant (start <= t < end). Index: time; one column per pod
    (or one column `total` when by=None)."""
    t = np.asarray(times, dtype=float)
    out = {}
    for pod, g in _groups(samples, by, pods).items():
        s = np.sort(g["start"].to_numpy(dtype=float))
        e = np.sort(_ends(g)) if len(g) else np.empty(0)
        out[pod] = np.searchsorted(s, t, "right") - np.searchsorted(e, t, "right")
    return pd.DataFrame(out, index=pd.Index(t, name="time"), dtype=float)


def _integral(s: np.ndarray, e: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Integral of the in-flight step function from -inf to each t (request-seconds)."""
    s, e = np.sort(s), np.sort(e)
    cs = np.concatenate([[0.0], np.cumsum(s)])
    ce = np.concatenate([[0.0], np.cumsum(e)])
    ks = np.searchsorted(s, t, "right")
    ke = np.searchsorted(e, t, "right")
    return (ks * t - cs[ks]) - (ke * t - ce[ke])


def inflight_mean(
    samples: pd.DataFrame,
    bucket: float = 1.0,
    t0: float | None = None,
    t1: float | None = None,
    by: str | None = "served_by",
    pods=None,
) -> pd.DataFrame:
    """Time-weighted mean in-flight per pod per bucket. Index: bucket start time."""
    lo, hi = span(samples)
    edges = grid(lo if t0 is None else t0, hi if t1 is None else t1, bucket)
    out = {}
    for pod, g in _groups(samples, by, pods).items():
        area = _integral(g["start"].to_numpy(dtype=float), _ends(g), edges)
        out[pod] = np.diff(area) / bucket
    return pd.DataFrame(out, index=pd.Index(edges[:-1], name="time"), dtype=float)


@dataclass(frozen=True)
class Agreement:
    """How closely the samples' in-flight matches a metric's view of it."""

    points: int  # metric observations compared
    mean_metric: float
    mean_samples: float
    mean_abs_diff: float
    relative_error: float  # mean |metric - samples| / mean samples (NaN when samples are idle)
    correlation: float  # Pearson r over the observations (NaN when either is constant)


def crosscheck(
    samples: pd.DataFrame,
    timeline: pd.DataFrame,
    metric: str,
    source: str | None = None,
    labels: dict | None = None,
    by: str | None = None,
    pod: str | None = None,
) -> Agreement:
    """Compare the metric's value at each observation time with the in-flight count computed from
    the samples at that instant. The metric is summed over its series at each time; restrict it
    with `labels`, and the samples with `pod` (a served_by value) for a per-pod check."""
    m = series(timeline, metric, source=source, labels=labels)
    m = m.groupby("time")["value"].sum()
    sel = samples if pod is None else samples[samples["served_by"] == pod]
    s = inflight_at(sel, m.index.to_numpy(), by=None)[TOTAL].to_numpy()
    mv = m.to_numpy(dtype=float)
    if len(mv) == 0:
        nan = float("nan")
        return Agreement(0, nan, nan, nan, nan, nan)
    diff = np.abs(mv - s)
    mean_s = float(s.mean())
    corr = float(np.corrcoef(mv, s)[0, 1]) if mv.std() > 0 and s.std() > 0 else float("nan")
    return Agreement(
        points=len(mv),
        mean_metric=float(mv.mean()),
        mean_samples=mean_s,
        mean_abs_diff=float(diff.mean()),
        relative_error=float(diff.mean() / mean_s) if mean_s > 0 else float("nan"),
        correlation=corr,
    )
