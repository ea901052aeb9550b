"""Readiness drop-out: a pod over its queue limit turns not ready, the proxy stops sending it
calls (allowing one probe interval for the proxy to notice), and it returns once drained.

served_by holds the pod's address (ip:port, like Envoy's %UPSTREAM_HOST%); the readiness events
carry both the pod name and its address in their labels, which is how calls are mapped to pods.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from loadgate.judge import names
from loadgate.judge.timeline import series


def transitions(
    timeline: pd.DataFrame,
    metric: str = names.READY_METRIC,
    sources=names.READY_SOURCES,
    pod_label: str = names.POD_LABEL,
    address_label: str = names.ADDRESS_LABEL,
) -> pd.DataFrame:
    """Readiness changes: time, pod, address, ready (bool). Repeated observations of the same
    state collapse to the first one, so a scraped gauge and an event stream give the same table."""
    s = series(timeline, metric, source=sources, expand=(pod_label, address_label))
    s = s.rename(columns={pod_label: "pod", address_label: "address"})
    s["ready"] = s["value"] > 0.5
    s = s.sort_values(["pod", "time"], kind="stable")
    changed = s["ready"] != s.groupby("pod")["ready"].shift()
    return s[changed][["time", "pod", "address", "ready"]].reset_index(drop=True)


@dataclass(frozen=True)
class ReadinessResult:
    drops: int  # ready -> not ready transitions
    pods_dropped: tuple[str, ...]
    returned: int  # drops followed by a return to ready
    not_ready_s: float  # total pod-seconds not ready (until the end of the timeline)
    calls_to_not_ready: int  # calls started on a not-ready pod beyond the grace (either end)
    calls_in_grace: int  # calls started on a not-ready pod within the grace period
    overloads: int  # episodes of a pod's queue above the limit
    overloads_not_dropped: int  # ... where the pod was not (or not soon) marked not ready
    max_queue: float  # highest queue depth observed (NaN without queue metric)
    offending_pods: dict[str, int] = field(default_factory=dict)  # pod -> calls_to_not_ready


def _calls_on_not_ready(samples: pd.DataFrame, tr: pd.DataFrame) -> pd.DataFrame:
    """The calls started while their pod was not ready, with `since`: how long it had been not
    ready at the call's start. served_by may hold the pod's address or (from a fallback header)
    its name; both are matched."""
    keyed = pd.concat(
        [tr.assign(key=tr["address"]), tr[tr["pod"] != tr["address"]].assign(key=tr["pod"])]
    )
    keyed = keyed[keyed["key"] != ""].astype({"key": str})
    calls = samples[samples["served_by"].isin(keyed["key"].unique())]
    if calls.empty:
        return pd.DataFrame({"start": [], "pod": [], "since": [], "until": []})
    left = pd.DataFrame(
        {"start": calls["start"].astype(float), "key": calls["served_by"].astype(str)}
    )
    right = keyed.rename(columns={"time": "t_state"})[["t_state", "key", "ready", "pod"]]
    m = pd.merge_asof(
        left.sort_values("start", kind="stable"),
        right.sort_values("t_state", kind="stable"),
        left_on="start",
        right_on="t_state",
        by="key",
        direction="backward",
    )
    bad = m[m["ready"].eq(False)]
    # `until`: time left to the pod's next recorded state. Readiness is recorded when the twin or
    # the API server observes it, a little after the proxy acted on it, so a call started just
    # before a recorded return to ready went to a pod the proxy already saw ready.
    nxt = pd.merge_asof(
        bad[["start", "key"]].sort_values("start", kind="stable"),
        right.rename(columns={"t_state": "t_next"})[["t_next", "key"]].sort_values("t_next"),
        left_on="start",
        right_on="t_next",
        by="key",
        direction="forward",
        allow_exact_matches=False,
    )
    until = (nxt["t_next"] - nxt["start"]).fillna(float("inf")).to_numpy()
    return bad.sort_values("start", kind="stable").assign(
        since=lambda d: d["start"] - d["t_state"], until=until
    )


def _overload_episodes(
    timeline: pd.DataFrame, limit: float, metric: str, pod_label: str
) -> tuple[pd.DataFrame, float]:
    """First observation of each run of consecutive over-limit queue observations, per pod, and
    the highest queue depth seen."""
    q = series(timeline, metric, expand=(pod_label,)).rename(columns={pod_label: "pod"})
    q = q.sort_values(["pod", "time"], kind="stable")
    over = q["value"] > limit
    starts = over & ~over.groupby(q["pod"]).shift(fill_value=False)
    return q[starts][["time", "pod"]].reset_index(drop=True), float(q["value"].max())


def readiness(
    samples: pd.DataFrame,
    timeline: pd.DataFrame,
    probe_interval: float = 1.0,
    queue_limit: float = 50,
    drop_within: float | None = None,
    return_grace: float = 0.0,
    ready_metric: str = names.READY_METRIC,
    ready_sources=names.READY_SOURCES,
    queue_metric: str = names.QUEUE_METRIC,
    pod_label: str = names.POD_LABEL,
    address_label: str = names.ADDRESS_LABEL,
) -> ReadinessResult:
    """probe_interval: the grace after a pod turns not ready before a call sent to it counts as a
    violation. drop_within: how soon after its queue first exceeds queue_limit the pod must be
    marked not ready (default two probe intervals plus one second of scrape delay).
    return_grace: a call started this close before the pod's recorded return to ready is not
    counted (readiness is recorded when observed, slightly after the proxy saw it)."""
    tr = transitions(timeline, ready_metric, ready_sources, pod_label, address_label)
    within = drop_within if drop_within is not None else 2 * probe_interval + 1.0
    # drops: a not-ready state after the pod was seen (its first observation may be not ready)
    first = ~tr["pod"].duplicated()
    drops = tr[~tr["ready"] & ~first]
    nxt = tr.groupby("pod")["ready"].shift(-1)
    returned = int((~tr["ready"] & ~first & nxt.eq(True)).sum())
    t_end = float(timeline["time"].max()) if len(timeline) else 0.0
    t_next = tr.groupby("pod")["time"].shift(-1).fillna(t_end)
    not_ready_s = float((t_next - tr["time"])[~tr["ready"]].sum())

    bad = _calls_on_not_ready(samples, tr)
    late = bad[(bad["since"] > probe_interval) & (bad["until"] > return_grace)]

    ep, max_queue = (
        _overload_episodes(timeline, queue_limit, queue_metric, pod_label)
        if (timeline["metric"] == queue_metric).any()
        else (pd.DataFrame(columns=["time", "pod"]), float("nan"))
    )
    missed = len(ep)  # without readiness events every overload went unanswered
    if len(ep) and len(tr):
        ep = ep.sort_values("time", kind="stable")
        states = tr.sort_values("time", kind="stable")
        # state of the pod at the episode start, and its next drop after it
        at = pd.merge_asof(ep, states[["time", "pod", "ready"]], on="time", by="pod")
        nd = pd.merge_asof(
            ep,
            drops.sort_values("time")[["time", "pod"]].assign(t_drop=lambda d: d["time"]),
            on="time",
            by="pod",
            direction="forward",
        )
        already = at["ready"].eq(False).to_numpy()
        soon = (nd["t_drop"] - nd["time"] <= within).fillna(False).to_numpy(dtype=bool)
        missed = int((~already & ~soon).sum())
    return ReadinessResult(
        drops=len(drops),
        pods_dropped=tuple(sorted(drops["pod"].unique())),
        returned=returned,
        not_ready_s=not_ready_s,
        calls_to_not_ready=len(late),
        calls_in_grace=len(bad) - len(late),
        overloads=len(ep),
        overloads_not_dropped=missed,
        max_queue=max_queue,
        offending_pods={str(k): int(v) for k, v in late["pod"].value_counts().items()},
    )


ENVOY_HEALTH_METRIC = "envoy_healthy"  # the twin's record of Envoy's health flags per pod


@dataclass(frozen=True)
class Reaction:
    """How fast the stack acted on a pod turning not ready (worst over its drops, seconds after
    the kubelet's NotReady; negative = before it): when Envoy's health check marked the pod
    unhealthy, and when the proxy started its last call on it. NaN when not seen."""

    envoy_unhealthy_s: float
    last_call_s: float


def reaction(
    samples: pd.DataFrame,
    timeline: pd.DataFrame,
    window_s: float = 5.0,
    envoy_metric: str = ENVOY_HEALTH_METRIC,
) -> Reaction:
    """For each drop: Envoy's first unhealthy mark within `window_s` around it, and the last call
    started on the pod (served_by = its address) from the drop until it is ready again."""
    tr = transitions(timeline)
    first = ~tr["pod"].duplicated()
    drops = tr[~tr["ready"] & ~first]
    env = series(timeline, envoy_metric, expand=(names.POD_LABEL,))
    unhealthy = env[env["value"] < 0.5] if len(env) else env
    worst_env, worst_call = float("nan"), float("nan")
    for _, d in drops.iterrows():
        later = tr[(tr["pod"] == d["pod"]) & (tr["time"] > d["time"]) & tr["ready"]]
        until = float(later["time"].min()) if len(later) else float("inf")
        u = (
            unhealthy[
                (unhealthy[names.POD_LABEL] == d["pod"])
                & ((unhealthy["time"] - d["time"]).abs() <= window_s)
            ]
            if len(unhealthy)
            else unhealthy
        )
        if len(u):
            worst_env = float(np.nanmax([worst_env, u["time"].min() - d["time"]]))
        calls = samples[
            (samples["served_by"] == d["address"])
            & (samples["start"] >= d["time"])
            & (samples["start"] < until)
        ]
        if len(calls):
            worst_call = float(np.nanmax([worst_call, calls["start"].max() - d["time"]]))
    return Reaction(envoy_unhealthy_s=worst_env, last_call_s=worst_call)
