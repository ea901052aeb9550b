"""Balance across pods: does the proxy spread in-flight work, not just request counts?

Under mixed 50/2000-token traffic, round robin gives every pod the same number of requests, but
the pods that drew several long generations pile up in-flight work while others drain and sit
idle. Least request sends the next call to the pod with fewer in flight, so in-flight stays level.
Request counts cannot tell the two apart; where each call went, given what was in flight, can.
The headline figure looks at each choice the proxy made: at the instant a call arrived, was the
pod it was sent to the one with the most in flight? Envoy's least request draws 2 pods at random
and takes the less busy, so it sends a call to the single busiest of 3 pods only when both draws
are that pod: 1/9 of the time; round robin ignores load: about 1/3 (measured 0.12-0.14 against
0.29 here, docs/gate.md). The outcome figures follow: max/mean in-flight across pods over time
(1.0 = level), counted only in buckets with enough load to mean something, and the worst symptom,
the share of time one pod has a full batch queued while another is idle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from loadgate.judge.inflight import inflight_at, inflight_mean, span


@dataclass(frozen=True)
class BalanceResult:
    pods: tuple[str, ...]
    buckets: int  # buckets with enough load that were counted
    imbalance_p95: float  # headline: p95 over buckets of max/mean in-flight across pods
    imbalance_mean: float
    queued_while_idle: float  # share of time some pod has >= batch in flight while another has 0
    token_seconds_share: dict[str, float] = field(default_factory=dict)
    request_share: dict[str, float] = field(default_factory=dict)
    token_seconds_spread: float = float("nan")  # max/min pod share of token-seconds
    # of the calls that arrived while one pod had strictly the most in flight, the share sent
    # to that pod (least request, 2 choices over n pods: 1/n^2; round robin ~1/n)
    busiest_pick_share: float = float("nan")
    picks_judged: int = 0  # calls that arrived while one pod was strictly the busiest


def imbalance_series(per_pod: pd.DataFrame, min_total: float) -> pd.Series:
    """max/mean across pods per bucket, only where the total in-flight >= min_total."""
    total = per_pod.sum(axis=1)
    mean = per_pod.mean(axis=1)
    keep = total >= min_total
    return (per_pod.max(axis=1)[keep] / mean[keep]).rename("imbalance")


def queued_while_idle_share(counts: pd.DataFrame, batch_size: int) -> float:
    """Share of instants where one pod has >= batch_size in flight while another has none."""
    if counts.empty or counts.shape[1] < 2:
        return 0.0
    c = counts.to_numpy()
    hit = (c >= batch_size).any(axis=1) & (c == 0).any(axis=1)
    return float(hit.mean())


def busiest_picks(samples: pd.DataFrame, pods: list[str]) -> tuple[int, int]:
    """(calls that arrived while one pod had strictly the most in flight, of those the ones sent
    to it). In flight is counted at each call's start, without the call itself."""
    calls = samples[samples["served_by"].isin(pods)]
    if calls.empty or len(pods) < 2:
        return 0, 0
    counts = inflight_at(calls, calls["start"].to_numpy(dtype=float), pods=pods).to_numpy()
    counts = counts.copy()
    chosen = calls["served_by"].map({p: i for i, p in enumerate(pods)}).to_numpy()
    rows = np.arange(len(calls))
    counts[rows, chosen] -= 1  # what the proxy saw just before this call
    top = counts.max(axis=1)
    unique = (counts == top[:, None]).sum(axis=1) == 1
    hit = unique & (counts[rows, chosen] == top)
    return int(unique.sum()), int(hit.sum())


def balance(
    samples: pd.DataFrame,
    bucket: float = 1.0,
    batch_size: int = 8,
    min_total: float | None = None,
    pods=None,
    t0: float | None = None,
    t1: float | None = None,
    resolution: float | None = None,
) -> BalanceResult:
    """Balance figures over [t0, t1] (default: the samples' span).

    pods: every pod that could have served (a pod that got nothing counts as idle); default the
    pods seen in served_by. min_total: total in-flight a bucket needs to be counted (default one
    per pod). resolution: spacing of the instants for queued_while_idle (default bucket / 10).
    """
    served = samples[samples["served_by"].notna() & (samples["served_by"] != "")]
    lo, hi = span(served)
    t0 = lo if t0 is None else t0
    t1 = hi if t1 is None else t1
    per_pod = inflight_mean(served, bucket, t0, t1, pods=pods)
    names = tuple(per_pod.columns)
    need = float(len(names)) if min_total is None else float(min_total)
    imb = imbalance_series(per_pod, need)
    step = resolution or bucket / 10
    instants = np.arange(t0, t1, step) if t1 > t0 else np.empty(0)
    counts = inflight_at(served, instants, pods=list(names))
    # token-seconds: tokens x time in flight, the work a pod carried (long streams weigh most)
    ts = (
        (served["tokens"].astype(float) * (served["end"] - served["start"]).clip(lower=0))
        .groupby(served["served_by"])
        .sum()
    )
    ts = ts.reindex(list(names), fill_value=0.0)
    ts_share = (ts / ts.sum()) if ts.sum() > 0 else ts * 0.0
    req = served["served_by"].value_counts().reindex(list(names), fill_value=0)
    req_share = req / req.sum() if req.sum() > 0 else req * 0.0
    spread = (
        float(ts_share.max() / ts_share.min())
        if len(names) and ts_share.min() > 0
        else float("inf")
    )
    in_window = served[(served["start"] >= t0) & (served["start"] <= t1)]
    judged, hits = busiest_picks(in_window, list(names))
    return BalanceResult(
        pods=names,
        buckets=int(len(imb)),
        imbalance_p95=float(imb.quantile(0.95)) if len(imb) else float("nan"),
        imbalance_mean=float(imb.mean()) if len(imb) else float("nan"),
        queued_while_idle=queued_while_idle_share(counts, batch_size),
        token_seconds_share={k: float(v) for k, v in ts_share.items()},
        request_share={k: float(v) for k, v in req_share.items()},
        token_seconds_spread=spread if len(names) else float("nan"),
        busiest_pick_share=hits / judged if judged else float("nan"),
        picks_judged=judged,
    )
