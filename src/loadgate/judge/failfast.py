"""Fail-fast under a flood: the stack must say "no" at once (UNAVAILABLE in milliseconds), never
let callers wait into their deadline, keep serving what it accepts, and recover afterwards.

The gate uses the stack's own response time (end - start) for rejections: that is what the
proxy controls. Latency from `intended` is reported beside it so a lagging generator is visible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from loadgate.judge import names
from loadgate.judge.inflight import TOTAL, inflight_at
from loadgate.judge.latency import LatencyFrom


@dataclass(frozen=True)
class FailFastResult:
    flood_start: float
    flood_end: float
    sent: int  # calls sent during the flood
    rejected: int
    rejected_share: float
    reject_p50_ms: float  # end - start
    reject_p99_ms: float
    reject_p50_from_intended_ms: float  # end - intended
    reject_p99_from_intended_ms: float
    deadline_exceeded: int
    accepted: int
    accepted_p99_ms: float  # OK calls, end - start
    accepted_p99_from_intended_ms: float
    # Most admitted calls in flight at once during the flood (client view of the proxy's
    # in-flight): a breaker caps it at max_requests; without one it grows until pods drop out.
    admitted_inflight_peak: int
    recovery_s: float | None  # None: never back within the SLO after the flood


def _q(x: pd.Series, q: float) -> float:
    return float(x.quantile(q)) if len(x) else float("nan")


def admitted_inflight_peak(
    samples: pd.DataFrame, t0: float, t1: float, rejected_statuses=names.REJECTED
) -> int:
    """Peak count of admitted calls (any phase, not rejected) in flight at one instant in
    [t0, t1]. A step function peaks just after a start, so the starts are the instants to read."""
    admitted = samples[
        ~samples["status"].isin(rejected_statuses) & (samples["status"] != names.DROPPED)
    ]
    starts = admitted["start"].to_numpy(dtype=float)
    starts = starts[(starts >= t0) & (starts <= t1)]
    if not len(starts):
        return 0
    return int(inflight_at(admitted, starts, by=None)[TOTAL].max())


def flood_window(samples: pd.DataFrame, phase: str) -> tuple[float, float]:
    """First and last intended send of the phase."""
    rows = samples[samples["phase"] == phase]
    if rows.empty:
        raise ValueError(f"no samples in phase {phase!r}")
    return float(rows["intended"].min()), float(rows["intended"].max())


def recovery_time(
    samples: pd.DataFrame,
    after: float,
    slo_ms: float,
    cls: str | None = None,
    window: float = 2.0,
    quantile: float = 0.99,
    min_count: int = 5,
    latency_from: LatencyFrom = "intended",
) -> float | None:
    """Seconds from `after` to the end of the first window (by intended send) whose latency
    quantile for the class is within the SLO. A call that did not succeed counts as infinitely
    slow: a window full of errors has not recovered. Windows with < min_count calls are skipped."""
    s = samples[(samples["intended"] >= after) & (samples["status"] != names.DROPPED)]
    if cls is not None:
        s = s[s["cls"] == cls]
    if s.empty:
        return None
    lat = (s["end"] - s[latency_from]) * 1000.0
    lat = lat.where(s["status"] == names.OK, np.inf)
    w = np.floor((s["intended"] - after) / window)
    g = lat.groupby(w)
    stats = pd.DataFrame({"n": g.size(), "q": g.quantile(quantile)})
    ok = stats[(stats["n"] >= min_count) & (stats["q"] <= slo_ms)]
    if ok.empty:
        return None
    return float((ok.index.min() + 1) * window)


def failfast(
    samples: pd.DataFrame,
    phase: str = "flood",
    window: tuple[float, float] | None = None,
    slo_ms: float = 1000.0,
    slo_class: str | None = None,
    recovery_window: float = 2.0,
    rejected_statuses=names.REJECTED,
) -> FailFastResult:
    """Figures of the flood: the calls whose intended send falls in `window` (default: the span of
    `phase`), and recovery of `slo_class` (default all) to slo_ms after it."""
    t0, t1 = window if window is not None else flood_window(samples, phase)
    s = samples[
        (samples["intended"] >= t0)
        & (samples["intended"] <= t1)
        & (samples["status"] != names.DROPPED)
    ]
    rej = s[s["status"].isin(rejected_statuses)]
    ok = s[s["status"] == names.OK]
    own = lambda d: (d["end"] - d["start"]) * 1000.0  # noqa: E731
    frm = lambda d: (d["end"] - d["intended"]) * 1000.0  # noqa: E731
    return FailFastResult(
        flood_start=t0,
        flood_end=t1,
        sent=len(s),
        rejected=len(rej),
        rejected_share=len(rej) / len(s) if len(s) else float("nan"),
        reject_p50_ms=_q(own(rej), 0.5),
        reject_p99_ms=_q(own(rej), 0.99),
        reject_p50_from_intended_ms=_q(frm(rej), 0.5),
        reject_p99_from_intended_ms=_q(frm(rej), 0.99),
        deadline_exceeded=int((s["status"] == names.TIMEOUT).sum()),
        accepted=len(ok),
        accepted_p99_ms=_q(own(ok), 0.99),
        accepted_p99_from_intended_ms=_q(frm(ok), 0.99),
        admitted_inflight_peak=admitted_inflight_peak(samples, t0, t1, rejected_statuses),
        recovery_s=recovery_time(samples, t1, slo_ms, slo_class, recovery_window),
    )
