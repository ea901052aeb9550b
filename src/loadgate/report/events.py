"""What happened during a run, for the plots' markers and the list below them: the scenario's
phases, the chaos extension's events, pods killed, pods leaving and rejoining readiness, and
replica changes. Pure functions over the samples and the timeline."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from typing import Literal

import pandas as pd

from loadgate.judge import names
from loadgate.judge.podkill import KILL_METRIC
from loadgate.judge.readiness import transitions
from loadgate.judge.timeline import series

Kind = Literal["fault", "readiness", "scaling", "step"]
SEVERITY: dict[str, int] = {"fault": 0, "readiness": 1, "scaling": 2, "step": 3}
Phase = tuple[str, float, float]  # name, first and last intended send (epoch s)

# the platform's record of a kill, when no chaos event names it (the pod-kill gate on the twin)
POD_EVENT = "pod_event"
KILLED_REASON = "Killed"
SAME_KILL_S = 5.0  # a platform kill this close to a chaos kill of the same pod is that kill
DYING_S = 1.0  # a killed pod's readiness changes from this long before its kill are not listed
MERGE_S = 1.0  # events of one kind and label this close together are listed as one
CHAOS_STEPS = {
    "method_start": "method starts",
    "method_end": "method ends",
    "rollbacks_start": "rollbacks start",
    "restore_replicas": "restore replicas",
}
CHAOS_SKIPPED = {"experiment_start", "experiment_end", "flood_end"}


@dataclass(frozen=True)
class Marker:
    time: float  # epoch s
    kind: Kind
    label: str  # "pod killed", "not ready", "replicas 3 -> 5", "flood"
    pods: tuple[str, ...] = ()
    detail: str = ""  # "SIGKILL", "300 calls at the service"
    end: float | None = None  # a span (a flood) ends here


def phases_from_samples(samples: pd.DataFrame) -> list[Phase]:
    """(name, first intended send, last intended send) per phase, in time order."""
    if samples.empty or "phase" not in samples:
        return []
    g = samples[samples["phase"].fillna("") != ""].groupby("phase")
    b = pd.DataFrame({"a": g["intended"].min(), "b": g["intended"].max()}).sort_values("a")
    return [(str(n), float(r.a), float(r.b)) for n, r in b.iterrows()]


def _labels(text: str | None) -> dict:
    return json.loads(text) if text else {}


def chaos_markers(timeline: pd.DataFrame, t1: float) -> list[Marker]:
    """The chaos extension's events; a flood is a span from its start to its end (or t1)."""
    rows = timeline[timeline["source"] == names.CHAOS_SOURCE].sort_values("time", kind="stable")
    ends: dict[str, list[float]] = {}
    for t, m, lab in zip(rows["time"], rows["metric"], rows["labels"], strict=True):
        if m == "flood_end":
            ends.setdefault(_labels(lab).get("tag", ""), []).append(float(t))
    out = []
    for t, m, lab, v in zip(
        rows["time"], rows["metric"], rows["labels"], rows["value"], strict=True
    ):
        t, lab = float(t), _labels(lab)
        pods = (str(lab["pod"]),) if lab.get("pod") else ()
        if m in CHAOS_SKIPPED:
            continue
        if m == KILL_METRIC:
            out.append(Marker(t, "fault", "pod killed", pods, str(lab.get("signal", ""))))
        elif m == "flood_start":
            end = next((e for e in ends.get(lab.get("tag", ""), []) if e >= t), t1)
            where = "a pod" if lab.get("target") == "pod" else "the service"
            out.append(Marker(t, "fault", "flood", pods, f"{v:.0f} calls at {where}", end))
        elif m == "scale":
            out.append(Marker(t, "fault", f"scale to {v:.0f}", (), str(lab.get("name", ""))))
        elif m == "restore_replicas":
            out.append(Marker(t, "step", CHAOS_STEPS[m], (), f"to {v:.0f}"))
        else:
            out.append(Marker(t, "step", CHAOS_STEPS.get(m, m.replace("_", " ")), pods))
    return out


def platform_kills(timeline: pd.DataFrame) -> list[Marker]:
    """Kills the platform recorded (the twin's pod events with reason Killed)."""
    s = series(timeline, POD_EVENT, expand=(names.POD_LABEL, "reason", "signal"))
    s = s[s["reason"] == KILLED_REASON]
    return [
        Marker(float(t), "fault", "pod killed", (p,), sig)
        for t, p, sig in zip(s["time"], s[names.POD_LABEL], s["signal"], strict=True)
    ]


def readiness_markers(timeline: pd.DataFrame, listing_s: float = 2.0) -> list[Marker]:
    """A pod leaving readiness, rejoining it, or turning ready for the first time (a pod that
    appeared more than `listing_s` after the platform's first listing of pods)."""
    tr = transitions(timeline)
    if tr.empty:
        return []
    tr = tr.sort_values(["pod", "time"], kind="stable")
    first = ~tr["pod"].duplicated()
    was_ready = tr.groupby("pod")["ready"].shift().fillna(False).astype(bool)
    ever_ready = was_ready.groupby(tr["pod"]).cummax()
    label = (~tr["ready"]).map({True: "not ready", False: "ready again"}).where(ever_ready, "ready")
    appeared = first & tr["ready"] & (tr["time"] > tr["time"].min() + listing_s)
    tr = tr.assign(label=label)[~first | appeared]
    return [
        Marker(float(t), "readiness", lab, (p,))
        for t, p, lab in zip(tr["time"], tr["pod"], tr["label"], strict=True)
    ]


def replica_markers(timeline: pd.DataFrame) -> list[Marker]:
    """Changes of the Deployment's spec replicas (what the autoscaler or a person asked for)."""
    s = series(timeline, names.REPLICAS_SPEC_METRIC)
    prev = s["value"].shift()
    s = s.assign(prev=prev)[prev.notna() & (s["value"] != prev)]
    return [
        Marker(float(t), "scaling", f"replicas {a:.0f} \u2192 {b:.0f}")
        for t, a, b in zip(s["time"], s["prev"], s["value"], strict=True)
    ]


def timeline_markers(timeline: pd.DataFrame, t0: float, t1: float) -> list[Marker]:
    """Every marker between t0 and t1, oldest first: a platform kill the chaos extension also
    recorded is shown once, a killed pod's own readiness changes afterwards not at all, and
    same events within MERGE_S of each other are one marker naming every pod."""
    chaos = chaos_markers(timeline, t1)
    kills = [m for m in chaos if m.label == "pod killed"]

    def known(k: Marker) -> bool:
        return any(k.pods == c.pods and abs(k.time - c.time) <= SAME_KILL_S for c in kills)

    kills += [k for k in platform_kills(timeline) if not known(k)]
    killed_at = {m.pods[0]: m.time for m in kills if m.pods}
    # a killed pod turns not ready as it dies: the kill says it
    ready = [
        m
        for m in readiness_markers(timeline)
        if m.time < killed_at.get(m.pods[0], math.inf) - DYING_S
    ]
    every = chaos + [k for k in kills if k not in chaos] + ready + replica_markers(timeline)
    every = [m for m in every if t0 <= m.time <= t1]
    every.sort(key=lambda m: (m.time, SEVERITY[m.kind]))
    return merge_close(every)


def merge_close(markers: list[Marker], within: float = MERGE_S) -> list[Marker]:
    out: list[Marker] = []
    for m in markers:
        last = out[-1] if out else None
        if (
            last is not None
            and (last.kind, last.label, last.detail, last.end) == (m.kind, m.label, m.detail, m.end)
            and m.time - last.time <= within
            and m.pods
        ):
            out[-1] = replace(last, pods=last.pods + tuple(p for p in m.pods if p not in last.pods))
        else:
            out.append(m)
    return out


def kills_by_pod(markers: list[Marker]) -> dict[str, tuple[float, str]]:
    """{pod: (time, how)} of the first kill of each pod."""
    out: dict[str, tuple[float, str]] = {}
    for m in markers:
        if m.label == "pod killed":
            for p in m.pods:
                out.setdefault(p, (m.time, m.detail))
    return out


def from_pairs(events: list[tuple[float, str]]) -> list[Marker]:
    """Markers from (time, label) pairs, as write_report's callers used to pass them."""
    return [Marker(float(t), "step", str(label)) for t, label in sorted(events)]
