"""Chaos Toolkit actions of the loadgate extension (python provider, module loadgate.chaos.actions).

Each action acts through the platform the experiment's configuration selects (twin or
Kubernetes, see platforms.py), records what it did as a chaos event in the run's timeline, and
bounds its own duration: Chaos Toolkit does not enforce timeouts on python providers.
"""

import time
from typing import Any

from loadgate.chaos import session
from loadgate.chaos.flood import Flood
from loadgate.chaos.platforms import platform_for
from loadgate.errors import UserError
from loadgate.platform.base import Platform

__all__ = ["flood_queue", "kill_pods", "restore_replicas", "scale", "stop_floods"]

MAX_WAIT_S = 600.0
_POLL_S = 0.25


def _remember_replicas(platform: Platform) -> None:
    """The spec replica count before the first fault: what restore_replicas goes back to."""
    s = session.current()
    if s.replicas_before is None:
        s.replicas_before = platform.replicas().spec


def _bounded(value: float, what: str) -> float:
    if not 0 <= value <= MAX_WAIT_S:
        raise UserError(f"{what} must be in [0, {MAX_WAIT_S:.0f}] s (got {value})")
    return float(value)


def kill_pods(
    count: int = 1,
    percent: float = None,
    selector: str = None,
    names: list = None,
    graceful: bool = False,
    grace_period_s: float = 30.0,
    tag: str = "kill",
    configuration: dict = None,
) -> list:
    """Delete model-server pods, as `kubectl delete pod` does.

    Picks `count` pods at random (or `percent` of them, or the pods `names`) among those
    matching `selector` (default: the model Deployment's). `graceful: false` (default) kills with
    SIGKILL (grace period 0); `graceful: true` sends SIGTERM and allows `grace_period_s` before
    SIGKILL. The Deployment controller replaces them. Returns the names killed; the first is
    remembered under `tag` for probes such as pod_ready.
    """
    platform = platform_for(configuration)
    _remember_replicas(platform)
    grace = _bounded(grace_period_s, "grace_period_s") if graceful else 0.0
    killed = platform.kill_pods(
        selector=selector,
        count=None if (names or percent is not None) else int(count),
        percent=percent,
        names=list(names) if names else None,
        grace_period=grace,
    )
    if not killed:
        raise UserError("kill_pods: no pod matched, nothing was killed")
    for name in killed:
        session.mark("kill_pods", pod=name, signal="SIGTERM" if grace else "SIGKILL")
    session.current().targets[tag] = killed[0]
    return killed


def _pick_pod(platform: Platform, pod: str | None) -> tuple[str, str]:
    pods = platform.pods()
    if pod:
        match = [p for p in pods if p.name == pod]
        if not match:
            raise UserError(f"no pod named {pod!r} (pods: {', '.join(p.name for p in pods)})")
        return match[0].name, match[0].address
    ready = sorted((p for p in pods if p.ready), key=lambda p: p.name)
    if not ready:
        raise UserError("no ready pod to flood")
    return ready[0].name, ready[0].address


def flood_queue(
    target: str = "service",
    pod: str = None,
    requests: int = 100,
    duration_s: float = 10.0,
    max_tokens: int = 20000,
    model: str = "llm",
    wait: bool = True,
    tag: str = "flood",
    configuration: dict = None,
) -> dict:
    """A bounded burst of long LLM calls: `requests` concurrent calls of `max_tokens` tokens
    (enough to hold a slot for the whole burst), all cancelled after `duration_s` (at most 5000
    calls, 600 s).

    `target: service` aims at the proxy (the in-flight limit must answer the excess at once);
    `target: pod` goes straight to one pod's gRPC address (`pod`, default the first ready pod)
    so its queue passes the readiness limit. With `wait: false` the flood runs in the
    background until its duration ends or `stop_floods` (the rollback) stops it. Returns the
    outcome counts (or, in the background, what was started).
    """
    if target not in ("service", "pod"):
        raise UserError(f"flood_queue target must be 'service' or 'pod' (got {target!r})")
    platform = platform_for(configuration)
    pod_name = None
    if target == "pod":
        pod_name, address = _pick_pod(platform, pod)
        session.current().targets[tag] = pod_name
    else:
        address = platform.grpc_target
    flood = Flood(address, int(requests), float(duration_s), model, int(max_tokens), pod_name)
    old = session.current().floods.pop(tag, None)
    if old is not None:
        old.stop()
    session.current().floods[tag] = flood
    session.mark("flood_start", value=requests, target=target, pod=pod_name, tag=tag)
    flood.start()
    if not wait:
        return {"started": flood.started, "target": address, "pod": pod_name, "tag": tag}
    flood.wait()
    session.mark("flood_end", value=requests, target=target, pod=pod_name, tag=tag)
    return flood.result()


def stop_floods(configuration: dict = None) -> list:
    """Rollback: stop every flood still running (in-flight calls are cancelled). Returns the
    outcome of each flood started in this experiment."""
    floods = list(session.current().floods.items())
    for _, f in floods:
        f.stop()
    out = []
    for tag, f in floods:
        was_running = f.running
        f.wait(timeout=10)
        if was_running:
            session.mark("flood_end", target="pod" if f.pod else "service", pod=f.pod, tag=tag)
        out.append(f.result())
    return out


def _wait_ready(platform: Platform, want: int | None, timeout_s: float) -> tuple[int, bool]:
    """Wait until `want` replicas are ready (None: as many as the spec says at each look, so an
    autoscaler moving the spec meanwhile is followed)."""
    deadline = time.monotonic() + timeout_s
    while True:
        r = platform.replicas()
        if r.ready >= (r.spec if want is None else want):
            return r.ready, True
        if time.monotonic() >= deadline:
            return r.ready, False
        time.sleep(_POLL_S)


def scale(
    replicas: int,
    deployment: str = None,
    wait_ready_s: float = 0.0,
    configuration: dict = None,
) -> dict:
    """Set the model Deployment's spec replicas (an autoscaler may change it again). With
    `wait_ready_s` > 0, wait that long at most for the ready count to reach it."""
    if int(replicas) < 0:
        raise UserError(f"scale: replicas must be >= 0 (got {replicas})")
    platform = platform_for(configuration)
    _remember_replicas(platform)
    platform.scale(int(replicas), deployment)
    session.mark("scale", value=replicas, name=deployment or "model deployment")
    ready, ok = _wait_ready(platform, int(replicas), _bounded(wait_ready_s, "wait_ready_s"))
    return {"replicas": int(replicas), "ready": ready, "reached": ok}


def restore_replicas(
    replicas: int = None,
    timeout_s: float = 60.0,
    configuration: dict = None,
) -> dict:
    """Rollback: put the spec replicas back to `replicas` (default: the count before this
    experiment's first kill or scale) and wait up to `timeout_s` until the spec count is ready
    (an autoscaler may move the spec again; its count is followed).
    Fails (so the journal shows it) when they are not ready in time."""
    platform = platform_for(configuration)
    current: Any = platform.replicas()
    want = replicas if replicas is not None else session.current().replicas_before
    want = current.spec if want is None else int(want)
    if current.spec != want:
        platform.scale(want)
    ready, ok = _wait_ready(platform, None, _bounded(timeout_s, "timeout_s"))
    session.mark("restore_replicas", value=want, name="model deployment")
    if not ok:
        raise UserError(f"restore_replicas: {ready}/{want} ready after {timeout_s:.0f}s")
    return {"replicas": want, "ready": ready}
