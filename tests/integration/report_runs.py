"""Synthetic runs shaped like real ones, for rendering reports: a whole gate session (five gates
with their phases, twin restarts between them, a readiness drop, a scale-up, a pod SIGKILLed)
and a kill gameday (a pod killed under steady load, replaced; the load stopped at the end with
long streams in flight)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from loadgate.judge import check, generator_health
from loadgate.report import Summary
from loadgate.schema import SAMPLE_COLUMNS, encode_labels

T0 = 1.8e9
OVERFLOW = "upstream connect error or disconnect/reset before headers. reset reason: overflow"
RESET = "Stream removed (RST_STREAM (Received RST_STREAM with error code 2))"
CLASSES = {"llm-short": (0.5, 0.25), "llm-long": (0.1, 8.0), "cv": (0.4, 0.012)}  # share, s


@dataclass
class Pod:
    name: str
    address: str
    ready_from: float  # s since T0
    ready_until: float = float("inf")
    not_ready: list[tuple[float, float]] = field(default_factory=list)


def _arrivals(rng, phases: list[tuple[str, float, float, float]]) -> pd.DataFrame:
    """Poisson sends per (phase, start s, end s, rate /s)."""
    parts = []
    for name, a, b, rate in phases:
        n = rng.poisson(rate * (b - a))
        parts.append(pd.DataFrame({"t": np.sort(rng.uniform(a, b, n)), "phase": name}))
    return pd.concat(parts, ignore_index=True)


def _calls(rng, sends: pd.DataFrame, pods: list[Pod]) -> pd.DataFrame:
    """Each send served by a random pod ready at that instant, with its class's latency."""
    n = len(sends)
    t = sends["t"].to_numpy()
    names = list(CLASSES)
    cls = rng.choice(names, n, p=[CLASSES[c][0] for c in names])
    mean = np.array([CLASSES[c][1] for c in cls])
    lat = rng.gamma(6, mean / 6)
    ready = np.stack(
        [
            (t >= p.ready_from)
            & (t < p.ready_until)
            & ~np.any([(t >= a) & (t < b) for a, b in p.not_ready] or [np.zeros(n, bool)], axis=0)
            for p in pods
        ],
        axis=1,
    )
    pick = (rng.random(n) * ready.sum(axis=1)).astype(int)
    column = np.argmax(np.cumsum(ready, axis=1) > pick[:, None], axis=1)
    start = T0 + t + rng.exponential(0.0008, n)
    return pd.DataFrame(
        {
            "intended": T0 + t,
            "start": start,
            "first_byte": start + lat / 8,
            "end": start + lat,
            "cls": cls,
            "model": np.where(cls == "cv", "resnet50", "llm"),
            "status": "OK",
            "served_by": np.array([p.address for p in pods])[column],
            "tokens": np.select([cls == "llm-long", cls == "cv"], [2000, 0], 50),
            "bytes": 100,
            "phase": sends["phase"].to_numpy(),
            "worker": "w0",
            "request_id": [f"r{i}" for i in range(n)],
            "error": "",
        }
    )


def _kill(calls: pd.DataFrame, victim: Pod, at: float) -> pd.DataFrame:
    """Calls on the victim across the kill instant end there, reset."""
    hit = (
        (calls["served_by"] == victim.address)
        & (calls["start"] <= T0 + at)
        & (calls["end"] > T0 + at)
    )
    calls.loc[hit, ["status", "error", "end"]] = ["INTERNAL", RESET, T0 + at]
    return calls


def _timeline(pods: list[Pod], spec: list[tuple[float, int]], until: float, source="twin"):
    rows = []
    for p in pods:
        lab = encode_labels({"pod": p.name, "address": p.address})
        rows.append((p.ready_from, source, "pod_ready", lab, 1.0))
        for a, b in p.not_ready:
            rows += [(a, source, "pod_ready", lab, 0.0), (b, source, "pod_ready", lab, 1.0)]
        if p.ready_until < until:
            rows.append((p.ready_until, source, "pod_ready", lab, 0.0))
    times = np.arange(min(t for t, _ in spec), until, 1.0)
    for t in times:
        want = [n for a, n in spec if a <= t][-1]
        ready = sum(p.ready_from <= t < p.ready_until for p in pods)
        for metric, v in (("replicas_spec", want), ("replicas_ready", ready)):
            rows.append((t, source, metric, encode_labels({"deployment": "modelserver"}), v))
    tl = pd.DataFrame(rows, columns=["time", "source", "metric", "labels", "value"])
    tl["time"] += T0
    return tl


def _event(t: float, source: str, metric: str, value: float = 1.0, **labels) -> tuple:
    return (T0 + t, source, metric, encode_labels(labels), value)


# (phase, start s, end s, rate /s) of the gates run on the twin's first and second boot
FIRST_BOOT = [
    ("balance/warmup", 0, 4, 8),
    ("balance/steady", 4, 34, 12),
    ("readiness/warmup", 46, 50, 10),
    ("readiness/steady", 50, 67, 14),
    ("fail_fast/steady", 75, 80, 8),
    ("fail_fast/flood", 80, 88, 70),
    ("fail_fast/cooldown", 88, 98, 10),
]
SECOND_BOOT = [
    ("pod_kill/steady", 115, 123, 20),
    ("pod_kill/kill", 123, 127, 20),
    ("pod_kill/recovery", 127, 139, 20),
    ("scale_up/warmup", 152, 155, 8),
    ("scale_up/sustained", 155, 185, 20),
    ("scale_up/cooldown", 185, 189, 6),
]


def gate_session(seed: int = 3) -> tuple[Summary, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    boot1 = [Pod(f"modelserver-7c9d5-a{i}x", f"127.0.0.1:4100{i}", -9.0) for i in (1, 2, 3)]
    boot1[0].ready_until = boot1[1].ready_until = boot1[2].ready_until = 100.0
    boot1[1].not_ready = [(49.2, 54.8)]
    extra = [
        Pod("modelserver-7c9d5-a4y", "127.0.0.1:41004", 87.7, 100.0),
        Pod("modelserver-7c9d5-a5y", "127.0.0.1:41005", 88.4, 100.0),
    ]
    boot2 = [Pod(f"modelserver-7c9d5-b{i}q", f"127.0.0.1:4200{i}", 105.0) for i in (1, 2, 3)]
    victim = boot2[1]
    victim.ready_until = 123.13
    late = [
        Pod("modelserver-7c9d5-b4r", "127.0.0.1:42004", 126.7),
        Pod("modelserver-7c9d5-b5s", "127.0.0.1:42005", 165.3, 181.8),
        Pod("modelserver-7c9d5-b6s", "127.0.0.1:42006", 165.3, 188.0),
    ]
    first = _calls(rng, _arrivals(rng, FIRST_BOOT), boot1 + extra)
    flood = (first["phase"] == "fail_fast/flood") & (rng.random(len(first)) < 0.4)
    first.loc[flood, ["status", "error", "served_by"]] = ["UNAVAILABLE", OVERFLOW, ""]
    first.loc[flood, "end"] = first.loc[flood, "start"] + 0.003
    second = _calls(rng, _arrivals(rng, SECOND_BOOT), boot2 + late)
    samples = pd.concat([first, _kill(second, victim, 123.13)], ignore_index=True)
    samples = samples.sort_values("intended", ignore_index=True)[SAMPLE_COLUMNS]
    spec = [(-9.0, 3), (85.0, 5), (100.0, 3), (163.6, 5), (181.7, 4), (188.0, 3)]
    timeline = pd.concat(
        [
            _timeline(boot1 + extra + boot2 + late, spec, 192.0),
            pd.DataFrame(
                [
                    _event(
                        123.129,
                        "twin",
                        "pod_event",
                        pod=victim.name,
                        address=victim.address,
                        reason="Killed",
                        signal="SIGKILL",
                    ),
                ],
                columns=["time", "source", "metric", "labels", "value"],
            ),
        ],
        ignore_index=True,
    )
    lagging = "the pods could not keep their simulated time (event loop lag p99 576 ms > 250 ms)"
    gates = [
        check("balance", "buckets", 30, ">=", 15, what="1 s buckets with enough load to judge"),
        check(
            "balance",
            "busiest_pick_share",
            0.1188,
            "<=",
            0.2,
            what="share of calls sent to the pod with strictly the most in flight",
        ),
        check("balance", "queued_while_idle", 0.0, "<=", 0.05),
        check("balance", "imbalance_mean", 1.346, "<=", 1.6),
        check("readiness", "drops", 1, ">=", 1),
        check("readiness", "overloads_not_dropped", 0, "<=", 0),
        check("readiness", "calls_to_not_ready", 0, "<=", 0),
        check("readiness", "returned", 1, ">=", 1),
        check("fail_fast", "rejected_share", 0.342, ">=", 0.05, untrusted=[lagging]),
        check("fail_fast", "reject_p99_ms", 2.8, "<=", 250, "ms", untrusted=[lagging]),
        check("fail_fast", "deadline_exceeded", 0, "<=", 0, untrusted=[lagging]),
        check("fail_fast", "accepted_p99_ms", 6808, "<=", 15000, "ms", untrusted=[lagging]),
        check("fail_fast", "admitted_inflight_peak", 150, "<=", 175, untrusted=[lagging]),
        check("fail_fast", "recovery_s", 4, "<=", 15, "s", untrusted=[lagging]),
        check("pod_kill", "failed_elsewhere", 0, "<=", 0),
        check("pod_kill", "accounted", 1, ">=", 1),
        check("pod_kill", "replica_back_s", 3.6, "<=", 30, "s"),
        check("pod_kill", "new_pod_calls", 91, ">=", 1),
        check(
            "pod_kill",
            "p99_recovery_s",
            24.0,
            "<=",
            16,
            "s",
            what="kill -> p99 of short calls back within max(2 x baseline, baseline + 50 ms); "
            "4 s windows; stack's record",
        ),
        check("scale_up", "peak_demand", 6, ">=", 4),
        check("scale_up", "max_ready", 5, ">=", 5),
        check("scale_up", "time_to_capacity_s", 6, "<=", 20, "s"),
        check("scale_up", "above_max", 0, "<=", 0),
    ]
    summary = Summary(
        run_id="gate-synthetic",
        scenario="gates: balance, readiness, fail_fast, pod_kill, scale_up",
        stack="twin: 3 pods, least_request, max_requests 150, readiness queue > 50, "
        "autoscaler on, time_scale 0.2",
        started=T0 - 12,
        finished=T0 + 195,
        gates=gates,
        generator=generator_health(samples, 18.0, segments=samples["phase"].str.partition("/")[0]),
        valid=False,
        invalid_reason=f"fail_fast: {lagging}",
    )
    return summary, samples, timeline


KILL_TITLE = "Kill a model pod under load"


def kill_gameday(
    seed: int = 11, stop_at: float = 30.0, interrupted: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict, str]:
    """samples, timeline, journal, experiment and the victim's name of a kill experiment:
    SIGKILL at 10 s, replacement ready at 12.5 s, load stopped at `stop_at`."""
    rng = np.random.default_rng(seed)
    pods = [
        Pod(f"modelserver-7c9d5-{s}", f"127.0.0.1:4300{i}", -5.0)
        for i, s in enumerate(("k2x8p", "m4r7t", "z9w3q"), 1)
    ]
    victim = pods[1]
    victim.ready_until = 10.0
    pods.append(Pod("modelserver-7c9d5-h6j2v", "127.0.0.1:43004", 12.5))
    calls = _calls(rng, _arrivals(rng, [("steady", 0, stop_at, 12)]), pods)
    calls = _kill(calls, victim, 10.0)
    stop = T0 + stop_at + 0.05
    cut = calls["end"] > stop
    calls.loc[cut, ["status", "error", "end"]] = [
        "CANCELLED",
        "Locally cancelled by application!",
        stop,
    ]
    samples = calls[SAMPLE_COLUMNS]
    steps = [
        _event(-3.0, "chaos", "experiment_start", name=KILL_TITLE),
        _event(9.9, "chaos", "method_start"),
        _event(10.0, "chaos", "kill_pods", pod=victim.name, signal="SIGKILL"),
        _event(
            10.002,
            "twin",
            "pod_event",
            pod=victim.name,
            address=victim.address,
            reason="Killed",
            signal="SIGKILL",
        ),
    ]
    if not interrupted:
        steps += [
            _event(16.0, "chaos", "method_end"),
            _event(16.05, "chaos", "rollbacks_start"),
            _event(16.06, "chaos", "restore_replicas", 3.0, name="model deployment"),
            _event(stop_at + 0.2, "chaos", "experiment_end", name=KILL_TITLE),
        ]
    timeline = pd.concat(
        [
            _timeline(pods, [(-5.0, 3)], stop_at + 1),
            pd.DataFrame(steps, columns=["time", "source", "metric", "labels", "value"]),
        ],
        ignore_index=True,
    )

    def probes(p99: float) -> dict:
        def probe(name, tolerance, output):
            return {
                "activity": {"type": "probe", "name": name, "tolerance": tolerance},
                "output": output,
                "status": "succeeded",
                "tolerance_met": True,
            }

        return {
            "steady_state_met": True,
            "probes": [
                probe("short-requests-succeed", {"type": "range", "range": [0.95, 1.0]}, 0.99),
                probe("short-requests-p99-ms", {"type": "range", "range": [0, 5000]}, p99),
                probe("all-replicas-ready", True, True),
            ],
        }

    journal = {
        "status": "interrupted" if interrupted else "completed",
        "deviated": False,
        "duration": stop_at + 3.5,
        "steady_states": {"before": probes(420.0), "after": None if interrupted else probes(610.0)},
    }
    experiment = {"title": KILL_TITLE, "description": "synthetic"}
    return samples, timeline, journal, experiment, victim.name


def write_gameday_dir(out, **kwargs) -> tuple[dict, dict, str]:
    """Write a kill gameday's files into `out` as the control leaves them."""
    from loadgate.schema import write_samples, write_timeline

    samples, timeline, journal, experiment, victim = kill_gameday(**kwargs)
    out.mkdir(parents=True, exist_ok=True)
    write_samples(samples, out / "samples.parquet")
    write_timeline(timeline, out / "timeline.parquet")
    (out / "journal.json").write_text(json.dumps(journal))
    return journal, experiment, victim
