"""Chaos Toolkit probes of the loadgate extension (python provider, module loadgate.chaos.probes).

Traffic probes read the recent sample rows of the background load the control runs (the live
chunks under its run directory); they wait (bounded by `wait_s`) until the window holds
`min_samples` calls, so a hypothesis checked right after the load starts is not judged on
nothing. Platform probes ask the platform the configuration selects. Every probe returns within
its own bound.
"""

import math
import time

import pandas as pd

from loadgate.chaos import figures, session
from loadgate.chaos.platforms import platform_for
from loadgate.errors import UserError
from loadgate.platform.base import Platform

__all__ = [
    "latency_percentile",
    "pod_ready",
    "ready_replicas",
    "rejection_latency",
    "replicas_restored",
    "scaled_object_status",
    "success_rate",
]

MAX_WAIT_S = 600.0
_POLL_S = 0.5


def _bound(value: float, what: str) -> float:
    if not 0 <= value <= MAX_WAIT_S:
        raise UserError(f"{what} must be in [0, {MAX_WAIT_S:.0f}] s (got {value})")
    return float(value)


def _recent(window_s: float, traffic_class: str, min_samples: int, wait_s: float) -> pd.DataFrame:
    from loadgate.traffic.live import read_recent

    out_dir = session.current().out_dir
    if out_dir is None:
        raise UserError(
            "no background load: traffic probes need the loadgate.chaos.control control "
            "in the experiment's `controls`"
        )
    deadline = time.monotonic() + _bound(wait_s, "wait_s")
    while True:
        now = time.time()
        # read a little more than the window: rows land in chunks ~2 s after their call ended
        recent = read_recent(out_dir, window_s + 5, now)
        rows = figures.window_rows(recent, now, window_s, traffic_class or None)
        if len(rows) >= min_samples or time.monotonic() >= deadline:
            break
        time.sleep(_POLL_S)
    if len(rows) < min_samples:
        cls = f" of class {traffic_class}" if traffic_class else ""
        raise UserError(
            f"only {len(rows)} call(s){cls} in the last {window_s:g}s (need {min_samples}); "
            "is the background load running?"
        )
    return rows


def success_rate(
    window_s: float = 10.0,
    traffic_class: str = None,
    min_samples: int = 5,
    wait_s: float = 30.0,
) -> float:
    """Share (0..1) of the background load's calls sent in the last `window_s` seconds that
    ended OK (rejections and errors count against it), for one traffic class or all."""
    return figures.success_rate(_recent(window_s, traffic_class, min_samples, wait_s))


def latency_percentile(
    percentile: float = 99.0,
    traffic_class: str = None,
    window_s: float = 10.0,
    measure: str = "latency",
    min_samples: int = 5,
    wait_s: float = 30.0,
) -> float:
    """Percentile (ms) of OK calls sent in the last `window_s` seconds, for one traffic class
    (e.g. llm-short) or all; `measure: latency` (to the last token) or `ttft` (to the first),
    counted from the scheduled send. A window without OK calls gives a very large number."""
    value = figures.percentile_ms(
        _recent(window_s, traffic_class, min_samples, wait_s), percentile, measure
    )
    return 1e12 if math.isnan(value) else value


def rejection_latency(percentile: float = 99.0, window_s: float = 30.0) -> float:
    """Percentile (ms) of how fast rejected calls (UNAVAILABLE / RESOURCE_EXHAUSTED) of the
    background load were answered in the last `window_s` seconds; fail fast means a few ms.
    0.0 when nothing was rejected."""
    return figures.rejection_ms(_recent(window_s, None, 0, 0.0), percentile)


def ready_replicas(
    at_least: int = None,
    timeout_s: float = 0.0,
    deployment: str = None,
    configuration: dict = None,
) -> int:
    """Ready replicas of the model Deployment (or the one named). With `at_least`, wait up to
    `timeout_s` for that many (e.g. to see an autoscaler add capacity) and return the count
    reached."""
    platform = platform_for(configuration)
    deadline = time.monotonic() + _bound(timeout_s, "timeout_s")
    while True:
        ready = platform.replicas(deployment).ready
        if at_least is None or ready >= at_least or time.monotonic() >= deadline:
            return ready
        time.sleep(_POLL_S / 2)


def _ready_at_spec(platform: Platform, at_least: int | None) -> tuple[bool, str]:
    r = platform.replicas()
    want = max(r.spec, at_least or 0)
    return r.ready >= want, f"{r.ready} ready of {want}"


def replicas_restored(timeout_s: float = 60.0, at_least: int = None, configuration: dict = None):
    """True once the ready replicas reach the Deployment's spec count (and `at_least` when
    given), waiting up to `timeout_s`. The spec is re-read at each look, so an autoscaler
    moving it meanwhile is followed."""
    platform = platform_for(configuration)
    deadline = time.monotonic() + _bound(timeout_s, "timeout_s")
    while True:
        ok, _ = _ready_at_spec(platform, at_least)
        if ok or time.monotonic() >= deadline:
            return ok
        time.sleep(_POLL_S / 2)


def pod_ready(
    pod: str = None,
    tag: str = "flood",
    expect: bool = True,
    timeout_s: float = 0.0,
    configuration: dict = None,
) -> bool:
    """Readiness of one pod: `pod` by name, else the pod an earlier action remembered under
    `tag` (flood_queue and kill_pods remember their target). With `timeout_s`, wait up to that
    long for the readiness to equal `expect`. A pod that no longer exists is not ready."""
    name = pod or session.current().targets.get(tag)
    if not name:
        raise UserError(f"pod_ready: give `pod`, or run an action with tag {tag!r} first")
    platform = platform_for(configuration)
    deadline = time.monotonic() + _bound(timeout_s, "timeout_s")
    while True:
        ready = any(p.name == name and p.ready for p in platform.pods())
        if ready == expect or time.monotonic() >= deadline:
            return ready
        time.sleep(_POLL_S / 2)


def scaled_object_status(configuration: dict = None) -> dict:
    """The ScaledObject as deployed: `{"name", "min_replicas", "max_replicas", "ready",
    "active"}` (ready/active from KEDA's conditions on Kubernetes; on the twin, ready
    when the emulated autoscaler runs, active when its last metric exceeded the activation
    threshold). Use a jsonpath tolerance on it."""
    so = platform_for(configuration).scaled_object()
    return summarize_scaled_object(so)


def summarize_scaled_object(so: dict) -> dict:
    spec = so.get("spec") or {}
    status = so.get("status") or {}
    if "scaleTargetRef" in spec or "conditions" in status:  # a KEDA object (Kubernetes)
        conds = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        return {
            "name": (so.get("metadata") or {}).get("name"),
            "min_replicas": spec.get("minReplicaCount"),
            "max_replicas": spec.get("maxReplicaCount"),
            "ready": conds.get("Ready") == "True",
            "active": conds.get("Active") == "True",
        }
    last = status.get("last_decision") or {}
    metric = last.get("metric_value")
    threshold = spec.get("activation_threshold", 0.0)
    return {
        "name": spec.get("name"),
        "min_replicas": spec.get("min_replicas"),
        "max_replicas": spec.get("max_replicas"),
        "ready": bool(spec) and status.get("active", True) is not False,
        "active": metric is not None and float(metric) > float(threshold or 0),
        "last_decision": last or None,
    }
