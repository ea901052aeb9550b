"""Selecting series out of the timeline (time, source, metric, labels JSON, value)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd


def series(
    timeline: pd.DataFrame,
    metric: str,
    source: str | tuple[str, ...] | None = None,
    labels: dict | None = None,
    expand: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Rows of one metric, sorted by time: columns time, value, labels and one column per label
    key named in `expand` (missing keys give ""). `labels` keeps rows whose labels include all
    the given key/value pairs."""
    rows = timeline[timeline["metric"] == metric]
    if source is not None:
        wanted = (source,) if isinstance(source, str) else tuple(source)
        rows = rows[rows["source"].isin(wanted)]
    rows = rows.sort_values("time", kind="stable")
    decoded = [json.loads(x) if x else {} for x in rows["labels"]]
    out = pd.DataFrame(
        {
            "time": rows["time"].to_numpy(dtype=float),
            "value": rows["value"].to_numpy(dtype=float),
            "labels": rows["labels"].to_numpy(dtype=object),
        }
    )
    keys = set(expand) | set(labels or {})
    for k in keys:
        out[k] = [str(d.get(k, "")) for d in decoded]
    if labels:
        keep = np.ones(len(out), dtype=bool)
        for k, v in labels.items():
            keep &= out[k].to_numpy() == str(v)
        out = out[keep].reset_index(drop=True)
    return out


def step_at(times: np.ndarray, values: np.ndarray, at, before=np.nan) -> np.ndarray:
    """Value of a step function (last observation at or before t) at each instant."""
    at = np.asarray(at, dtype=float)
    idx = np.searchsorted(np.asarray(times, dtype=float), at, "right") - 1
    vals = np.asarray(values, dtype=float)
    return np.where(idx >= 0, vals[np.clip(idx, 0, None)] if len(vals) else before, before)


def counter_delta(timeline: pd.DataFrame, metric: str, t0=None, t1=None, **sel) -> float:
    """Increase of a counter summed over its series within [t0, t1]; a drop is a reset (the new
    value counts from zero), as Prometheus' increase() treats it."""
    s = series(timeline, metric, **sel)
    if t0 is not None:
        s = s[s["time"] >= t0]
    if t1 is not None:
        s = s[s["time"] <= t1]
    if s.empty:
        return float("nan")
    total = 0.0
    for _, g in s.groupby("labels", sort=False):  # one loop per series, not per row
        d = np.diff(g["value"].to_numpy(dtype=float))
        v = g["value"].to_numpy(dtype=float)[1:]
        total += float(np.where(d >= 0, d, v).sum())
    return total
