"""Latency percentiles per class per time window, status rates, and the generator's health."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from loadgate.judge import names

LatencyFrom = Literal["intended", "start"]


def latency_ms(samples: pd.DataFrame, latency_from: LatencyFrom = "intended") -> pd.Series:
    """end - intended (what a user waits, coordinated-omission free) or end - start (the stack's
    own response time), in milliseconds."""
    return (samples["end"] - samples[latency_from]) * 1000.0


def windows(times: pd.Series, window: float, t0: float | None = None) -> pd.Series:
    """Start time of the window each instant falls in."""
    base = float(times.min()) if t0 is None else t0
    return base + np.floor((times - base) / window) * window


def latency_percentiles(
    samples: pd.DataFrame,
    window: float = 5.0,
    by: str | None = "cls",
    latency_from: LatencyFrom = "intended",
    quantiles=(0.5, 0.9, 0.99),
    ok_only: bool = True,
    t0: float | None = None,
) -> pd.DataFrame:
    """Long table: time (window start, by intended send), the `by` column, count, p50/p90/p99 ms."""
    s = samples[samples["status"] == names.OK] if ok_only else samples
    s = s[s["status"] != names.DROPPED]
    cols = ["time"] + ([by] if by else []) + ["count"] + [f"p{round(q * 100)}" for q in quantiles]
    if s.empty:
        return pd.DataFrame(columns=cols)
    frame = pd.DataFrame(
        {
            "time": windows(s["intended"], window, t0),
            "lat": latency_ms(s, latency_from),
        }
    )
    keys = ["time"]
    if by:
        frame[by] = s[by].to_numpy()
        keys.append(by)
    g = frame.groupby(keys, sort=True)["lat"]
    out = g.count().rename("count").to_frame()
    for q in quantiles:
        out[f"p{round(q * 100)}"] = g.quantile(q)
    return out.reset_index()[cols]


def status_rates(
    samples: pd.DataFrame, window: float = 1.0, t0: float | None = None
) -> pd.DataFrame:
    """Per window (by intended send): sent, ok, rejected, other errors, and the rejected share."""
    s = samples[samples["status"] != names.DROPPED]
    if s.empty:
        return pd.DataFrame(columns=["time", "sent", "ok", "rejected", "errors", "rejected_share"])
    status = s["status"]
    frame = pd.DataFrame(
        {
            "time": windows(s["intended"], window, t0).to_numpy(),
            "ok": (status == names.OK).to_numpy(dtype=int),
            "rejected": status.isin(names.REJECTED).to_numpy(dtype=int),
        }
    )
    frame["errors"] = 1 - frame["ok"] - frame["rejected"]
    out = frame.groupby("time").agg(
        sent=("ok", "size"),
        ok=("ok", "sum"),
        rejected=("rejected", "sum"),
        errors=("errors", "sum"),
    )
    out["rejected_share"] = out["rejected"] / out["sent"]
    return out.reset_index()


class GeneratorHealth(BaseModel):
    """Whether the load generator did what was asked: a generator that fell behind measures
    itself, not the stack."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sent: int
    dropped: int
    duration_s: float
    achieved_rate: float  # sent / duration (calls/s)
    target_rate: float | None = None
    rate_ratio: float | None = None  # achieved / target
    lag_p50_ms: float
    lag_p99_ms: float
    lag_max_ms: float


def generator_health(
    samples: pd.DataFrame,
    target_rate: float | None = None,
    dropped: int | None = None,
    drop_status: str = names.DROPPED,
    segments: pd.Series | None = None,
) -> GeneratorHealth:
    """Lag = start - intended of every sent call; rate = sent calls over the intended span.
    dropped: arrivals never sent, when counted outside the samples; else rows with drop_status.
    segments: a label per row (e.g. the gate) when the samples join separate runs: the span is
    then the sum of each segment's own span, so pauses between runs do not count as sending."""
    is_drop = samples["status"] == drop_status
    sent = samples[~is_drop]
    n_drop = int(is_drop.sum()) if dropped is None else int(dropped)
    if sent.empty:
        return GeneratorHealth(
            sent=0,
            dropped=n_drop,
            duration_s=0.0,
            achieved_rate=0.0,
            target_rate=target_rate,
            rate_ratio=0.0 if target_rate else None,
            lag_p50_ms=float("nan"),
            lag_p99_ms=float("nan"),
            lag_max_ms=float("nan"),
        )
    lag = (sent["start"] - sent["intended"]) * 1000.0
    labels = pd.Series(0, index=sent.index) if segments is None else segments[~is_drop]
    spans = sent["intended"].groupby(labels).agg(["min", "max"])
    duration = float((spans["max"] - spans["min"]).sum())
    # n calls over a span of d seconds were sent at (n - 1) / d per second (per segment)
    rate = (len(sent) - len(spans)) / duration if duration > 0 else float("nan")
    return GeneratorHealth(
        sent=len(sent),
        dropped=n_drop,
        duration_s=duration,
        achieved_rate=rate,
        target_rate=target_rate,
        rate_ratio=rate / target_rate if target_rate else None,
        lag_p50_ms=float(lag.quantile(0.5)),
        lag_p99_ms=float(lag.quantile(0.99)),
        lag_max_ms=float(lag.max()),
    )
