"""Pods by name: the timeline's rows that carry both a pod's name and its address (readiness,
pod events) map the samples' `served_by` (ip:port, from the proxy's header) to pod names."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pandas as pd

from loadgate.judge import names
from loadgate.judge.outcomes import run_segments
from loadgate.observe.envoy import name_served_by


def pod_names(timeline: pd.DataFrame) -> dict[str, str]:
    """{address: pod name} from every timeline row labelled with both; a bare IP is added only
    when a single pod had it (on the twin every pod is 127.0.0.1 with its own port)."""
    labels = timeline["labels"].fillna("")
    uniq = labels[labels.str.contains(f'"{names.ADDRESS_LABEL}"', regex=False)].unique()
    out: dict[str, str] = {}
    for text in uniq:
        lab = json.loads(text)
        pod, address = lab.get(names.POD_LABEL), lab.get(names.ADDRESS_LABEL)
        if pod and address:
            out.setdefault(str(address), str(pod))
    by_ip: dict[str, set[str]] = {}
    for address, pod in out.items():
        by_ip.setdefault(address.rpartition(":")[0] or address, set()).add(pod)
    for ip, pods in by_ip.items():
        if len(pods) == 1:
            out.setdefault(ip, next(iter(pods)))
    return out


def served_by_name(samples: pd.DataFrame, by_address: Mapping[str, str]) -> pd.Series:
    """samples.served_by as pod names; an address no pod was seen with stays as it is."""
    return name_served_by(samples["served_by"], by_address)


def short_names(pods: Iterable[str]) -> tuple[str, dict[str, str]]:
    """(common prefix, {pod: the rest}) when pods share a Deployment-style prefix ending in
    "-" (modelserver-7d9f-abcde -> "abcde"), else ("", {pod: pod}). For legends."""
    pods = sorted(set(pods))
    prefix = _common_prefix(pods) if len(pods) > 1 else ""
    prefix = prefix[: prefix.rfind("-") + 1]
    if not prefix or any(p == prefix for p in pods):
        return "", {p: p for p in pods}
    return prefix, {p: p[len(prefix) :] for p in pods}


def _common_prefix(items: list[str]) -> str:
    lo, hi = min(items), max(items)
    n = 0
    while n < min(len(lo), len(hi)) and lo[n] == hi[n]:
        n += 1
    return lo[:n]


@dataclass(frozen=True)
class PodRow:
    name: str  # pod name, or the address when no pod was seen with it
    address: str
    ok: int  # OK calls it served
    failed: int  # calls it served that failed (cancellations at the stop excluded)
    first_call: float | None  # s since the run's start
    last_call: float | None
    killed_at: float | None = None  # s since start, when a kill of this pod was recorded
    killed_how: str = ""  # e.g. SIGKILL
    new: bool = False  # appeared after the load started (a replacement or a scale-up)


def pods_table(
    samples: pd.DataFrame,
    timeline: pd.DataFrame,
    t0: float,
    kills: Mapping[str, tuple[float, str]],
    at_stop: pd.Series | None = None,
) -> list[PodRow]:
    """Every pod that served a call or was killed, in order of its first call. `kills`:
    {pod: (epoch s, how)}; `at_stop`: the rows to leave out of `failed`."""
    by_address = pod_names(timeline)
    address_of = {pod: a for a, pod in by_address.items() if ":" in a}
    served = samples[samples["served_by"].fillna("") != ""]
    pod = served_by_name(served, by_address)
    failed = served["status"] != names.OK
    if at_stop is not None:
        failed &= ~at_stop.reindex(served.index, fill_value=False)
    # a pod is new when it appeared after the load it served began (a gate session restarts
    # the twin between gates: those pods are not new)
    load_began = samples["intended"].groupby(run_segments(samples)).transform("min")
    g = pd.DataFrame(
        {
            "pod": pod,
            "ok": served["status"] == names.OK,
            "failed": failed,
            "t": served["start"],
            "began": load_began.reindex(served.index),
        }
    ).groupby("pod")
    calls = pd.DataFrame({"ok": g["ok"].sum(), "failed": g["failed"].sum()})
    calls["first"], calls["last"] = g["t"].min() - t0, g["t"].max() - t0
    calls["began"] = g["began"].min()
    seen = _first_seen(timeline)
    rows = []
    for name in sorted(set(calls.index) | set(kills), key=lambda p: _first(calls, p)):
        c = calls.loc[name] if name in calls.index else None
        killed = kills.get(name)
        rows.append(
            PodRow(
                name=name,
                address=address_of.get(name, name if ":" in name else ""),
                ok=int(c["ok"]) if c is not None else 0,
                failed=int(c["failed"]) if c is not None else 0,
                first_call=float(c["first"]) if c is not None else None,
                last_call=float(c["last"]) if c is not None else None,
                killed_at=float(killed[0] - t0) if killed else None,
                killed_how=killed[1] if killed else "",
                new=bool(c is not None and seen.get(name, -math.inf) > c["began"]),
            )
        )
    return rows


def _first(calls: pd.DataFrame, pod: str) -> tuple[float, str]:
    return (float(calls.at[pod, "first"]) if pod in calls.index else float("inf"), pod)


def _first_seen(timeline: pd.DataFrame) -> dict[str, float]:
    """When the platform first reported each pod (its readiness rows)."""
    rows = timeline[timeline["metric"] == names.READY_METRIC]
    first = rows.groupby("labels")["time"].min()
    out: dict[str, float] = {}
    for text, t in first.items():
        pod = json.loads(text or "{}").get(names.POD_LABEL)
        if pod:
            out[pod] = min(out.get(pod, t), float(t))
    return out
