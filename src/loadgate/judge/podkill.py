"""Pod-kill gate: what a killed pod may cost, from the samples and the timeline.

- only calls in flight on the victim when it died may fail: a failed call is *attributable*
  when it ran across the kill instant (or started within `grace_s` after it, before the proxy's
  health check noticed) and was served by the victim or by no known pod (a stream cut before
  its response headers names nobody); every other failure counts against the stack;
- every call is accounted for (`accounting`);
- the ready replica count is back to its pre-kill value within a bound (`replica_back_s`);
- p99 of short requests recovers: the first window start after the kill from which `hold`
  consecutive windows have p99 within max(baseline × factor, baseline + slack)
  (`p99_recovery_s`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from loadgate.judge import names
from loadgate.judge.accounting import accounting
from loadgate.judge.latency import latency_percentiles
from loadgate.judge.timeline import series, step_at

KILL_METRIC = "kill_pods"  # chaos event the kill_pods action records (labels: pod, signal)


@dataclass(frozen=True)
class PodKillResult:
    kill_time: float
    victim: str
    victim_inflight: int  # calls on the victim at the kill instant
    failed: int  # non-OK calls (generator drops and end-of-run cancellations excluded)
    failed_attributable: int  # of those, in flight on the victim (or unknown pod) at the kill
    failed_elsewhere: int  # the rest: failures the kill must not cause
    accounted: bool  # sent == ok + rejected + errors + timeouts + cancelled, no row unsettled
    replica_back_s: float  # kill -> ready replicas back to the pre-kill count (NaN: never)
    baseline_p99_ms: float  # short requests before the kill
    p99_recovery_s: float  # kill -> p99 of short requests back within bound (NaN: never)


def kill_events(timeline: pd.DataFrame, metric: str = KILL_METRIC) -> list[tuple[float, str]]:
    """(time, pod) of every kill the chaos extension recorded, oldest first."""
    rows = timeline[(timeline["source"] == names.CHAOS_SOURCE) & (timeline["metric"] == metric)]
    rows = rows.sort_values("time")
    return [
        (float(t), str(json.loads(lab or "{}").get(names.POD_LABEL, "")))
        for t, lab in zip(rows["time"], rows["labels"], strict=True)
    ]


def pod_address(timeline: pd.DataFrame, pod: str) -> str:
    """The victim's ip:port (what served_by holds), from the readiness rows; "" if unknown."""
    s = series(timeline, names.READY_METRIC, labels={names.POD_LABEL: pod}, expand=("address",))
    vals = [a for a in s["address"] if a] if "address" in s else []
    return vals[0] if vals else ""


def attributable(
    samples: pd.DataFrame, kill_time: float, victim: set[str], grace_s: float
) -> pd.Series:
    """Calls that were (or may have been) on the victim when it died."""
    on_victim = samples["served_by"].fillna("").isin(victim | {""})
    across = (samples["start"] <= kill_time + grace_s) & (samples["end"] >= kill_time)
    return on_victim & across


def replica_back_s(timeline: pd.DataFrame, kill_time: float, metric: str) -> float:
    s = series(timeline, metric)
    if s.empty:
        return math.nan
    t, v = s["time"].to_numpy(), s["value"].to_numpy()
    before = float(step_at(t, v, [kill_time - 1e-6])[0])
    if math.isnan(before):
        return math.nan
    after = t > kill_time
    dipped = after & (v < before)
    if not dipped.any():
        return 0.0  # the count never dipped (e.g. the proxy noticed after a replacement)
    first_dip = t[dipped][0]
    back = (t > first_dip) & (v >= before)
    return float(t[back][0] - kill_time) if back.any() else math.nan


def p99_recovery_s(
    samples: pd.DataFrame,
    kill_time: float,
    cls: str,
    window_s: float,
    factor: float,
    slack_ms: float,
    hold: int = 2,
) -> tuple[float, float]:
    """(baseline p99 ms before the kill, seconds from the kill to the first window that starts
    `hold` consecutive windows with p99 within the bound). NaN when that never happens: a
    single later spike does not undo a recovery, a stack that stays slow never recovers."""
    short = samples[samples["cls"] == cls]
    before = short[(short["status"] == names.OK) & (short["end"] < kill_time)]
    if before.empty:
        return math.nan, math.nan
    baseline = float(np.percentile((before["end"] - before["intended"]) * 1000.0, 99))
    bound = max(baseline * factor, baseline + slack_ms)
    after = short[short["intended"] >= kill_time]
    table = latency_percentiles(after, window=window_s, by=None, t0=kill_time)
    if table.empty:
        return baseline, math.nan
    # every window from the kill on, empty ones included (no OK call is no recovery)
    starts = kill_time + window_s * np.arange(int((table["time"].max() - kill_time) / window_s) + 1)
    p99 = pd.Series(table["p99"].to_numpy(), index=np.round(table["time"].to_numpy(), 6))
    good = np.array([p99.get(round(t, 6), np.inf) <= bound for t in starts])
    for i in range(len(good) - hold + 1):
        if good[i : i + hold].all():
            return baseline, float(starts[i] - kill_time)
    return baseline, math.nan


def podkill(
    samples: pd.DataFrame,
    timeline: pd.DataFrame,
    kill_time: float | None = None,
    victim: str | None = None,
    victim_address: str | None = None,
    cls: str = "llm-short",
    grace_s: float = 1.0,
    window_s: float = 2.0,
    factor: float = 1.5,
    slack_ms: float = 50.0,
    hold: int = 2,
    ready_metric: str = names.REPLICAS_READY_METRIC,
) -> PodKillResult:
    """The pod-kill figures; the kill defaults to the first `kill_pods` event of the timeline."""
    if kill_time is None or victim is None:
        kills = kill_events(timeline)
        if not kills:
            raise ValueError("no kill_pods event in the timeline")
        kill_time, victim = kills[0]
    address = victim_address if victim_address is not None else pod_address(timeline, victim)
    names_of_victim = {victim} | ({address} if address else set())
    calls = samples[~samples["status"].isin([names.DROPPED])]
    ended_by_run = calls["status"] == names.CANCELLED  # the run's end cancels what is in flight
    failed = (calls["status"] != names.OK) & ~ended_by_run
    attr = attributable(calls, kill_time, names_of_victim, grace_s)
    on_victim = calls["served_by"].fillna("").isin(names_of_victim) & (
        (calls["start"] <= kill_time) & (calls["end"] >= kill_time)
    )
    baseline, recovery = p99_recovery_s(calls, kill_time, cls, window_s, factor, slack_ms, hold)
    acc = accounting(samples)
    return PodKillResult(
        kill_time=float(kill_time),
        victim=victim,
        victim_inflight=int(on_victim.sum()),
        failed=int(failed.sum()),
        failed_attributable=int((failed & attr).sum()),
        failed_elsewhere=int((failed & ~attr).sum()),
        accounted=bool(acc.balanced and acc.unaccounted == 0),
        replica_back_s=replica_back_s(timeline, kill_time, ready_metric),
        baseline_p99_ms=baseline,
        p99_recovery_s=recovery,
    )


def calls_on_new_pods(samples: pd.DataFrame, known: list[str] | set[str], after: float) -> int:
    """OK calls sent after `after` and served by a pod not in `known` (the replacement serving)."""
    served = samples["served_by"].fillna("")
    new = ~served.isin(set(known)) & (served != "")
    return int((new & (samples["status"] == names.OK) & (samples["start"] > after)).sum())
