"""The emulated Deployment controller: keeps `replicas` pod processes, like a ReplicaSet.

One thread reconciles ~10 times a second: it notices exits, replaces killed pods after
`restart_delay_s × time_scale` under a new name, adds ready pods to HAProxy, takes pods out
before a scale-down SIGTERM, and turns HAProxy's view of each server (one `show stat` per tick,
cheap) into Ready/NotReady events — "Ready" means in the proxy's endpoints, as with a readiness
probe and a Service. Pods are spawned by this thread, so they die with it (PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from loadgate.procs import free_port, http_status, spawn, stop
from loadgate.twin.eventlog import EventLog
from loadgate.twin.haproxy import Runtime
from loadgate.twin.spec import TwinSpec

log = logging.getLogger(__name__)

PodCommand = Callable[[str, int, int], list[str]]  # (pod name, grpc port, http port) -> argv
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' rand.SafeEncodeString alphabet
TICK_S = 0.1


def template_hash(spec: TwinSpec) -> str:
    """A stable pod-template-hash: same spec, same hash, as a Deployment's ReplicaSet."""
    digest = hashlib.sha256(repr((spec.deployment, spec.modelserver_args)).encode()).digest()
    return "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:10])


def pod_name(deployment: str, tmpl_hash: str, rng: random.Random) -> str:
    return f"{deployment}-{tmpl_hash}-" + "".join(rng.choice(_ALPHABET) for _ in range(5))


@dataclass
class PodProc:
    name: str
    grpc_port: int
    http_port: int
    proc: subprocess.Popen
    log_path: Path
    created: float
    started: float | None = None
    ready: bool = False
    phase: str = "Pending"  # Pending | Running | Terminating
    in_proxy: bool = False
    kill_deadline: float | None = None  # SIGKILL when the grace period runs out
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"


class Supervisor:
    def __init__(
        self,
        spec: TwinSpec,
        run_dir: Path,
        runtime: Runtime,
        pod_command: PodCommand,
        log: EventLog,
        on_pods_changed: Callable[[list[PodProc]], None],
    ) -> None:
        self.spec = spec
        self.run_dir = run_dir
        self.runtime = runtime
        self.pod_command = pod_command
        self.log = log
        self.on_pods_changed = on_pods_changed
        self.desired = spec.replicas
        self.hash = template_hash(spec)
        self._rng = random.Random()
        self._lock = threading.RLock()
        self._pods: dict[str, PodProc] = {}
        self._restarts: list[float] = []  # monotonic times at which a replacement is created
        self._to_delete: set[str] = set()  # addresses drained in HAProxy, awaiting `del server`
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="twin-supervisor", daemon=True)
        self.error: BaseException | None = None
        self._last_ready: int | None = None
        (run_dir / "pods").mkdir(parents=True, exist_ok=True)

    # -- public API (any thread) -------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def pods(self) -> list[PodProc]:
        with self._lock:
            return list(self._pods.values())

    def scale(self, replicas: int) -> None:
        if replicas < 0:
            raise ValueError("replicas must be >= 0")
        with self._lock:
            if replicas != self.desired:
                self.log.event(
                    "scale",
                    self.spec.deployment,
                    "ScalingReplicaSet",
                    f"Scaled from {self.desired} to {replicas}",
                    replicas=replicas,
                )
            self.desired = replicas
            self.log.metric("twin", "replicas_spec", {"deployment": self.spec.deployment}, replicas)

    def kill(self, names: list[str], grace_period: float = 0.0) -> list[str]:
        """Delete pods as `kubectl delete pod` would: SIGTERM + grace, or SIGKILL at 0. The
        ReplicaSet creates each replacement after the restart delay."""
        killed = []
        with self._lock:
            for name in names:
                pod = self._pods.get(name)
                if pod is None or pod.phase == "Terminating":
                    continue
                sig = signal.SIGKILL if grace_period <= 0 else signal.SIGTERM
                self._signal(pod, sig)
                pod.phase = "Terminating"
                pod.kill_deadline = time.monotonic() + grace_period if grace_period > 0 else None
                self.log.event(
                    "pod",
                    name,
                    "Killed",
                    f"{sig.name} grace={grace_period}s",
                    address=pod.address,
                    signal=sig.name,
                )
                self._restarts.append(time.monotonic() + self._restart_delay())
                killed.append(name)
        return killed

    def ready_count(self) -> int:
        with self._lock:
            return sum(1 for p in self._pods.values() if p.ready and p.phase == "Running")

    def shutdown(self, grace: float = 3.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
        with self._lock:
            pods = list(self._pods.values())
        for p in pods:  # SIGTERM all first so they drain in parallel
            self._signal(p, signal.SIGTERM)
        for p in pods:
            stop(p.proc, grace)
        with self._lock:
            self._pods.clear()

    # -- the reconcile loop (supervisor thread) -------------------------------------------------

    def _restart_delay(self) -> float:
        return self.spec.restart_delay_s * self.spec.time_scale

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception as e:  # keep reconciling; surface the first error to Twin
                log.exception("supervisor tick failed")
                self.error = self.error or e
            self._stop.wait(TICK_S)

    def _tick(self) -> None:
        changed = self._reap()
        changed |= self._start_pending()
        self._watch_readiness()
        changed |= self._reconcile()
        self._delete_drained()
        if changed:
            self.on_pods_changed(self.pods())

    def _reap(self) -> bool:
        """Notice exited pods; an unexpected exit is replaced after the restart delay."""
        changed = False
        now = time.monotonic()
        with self._lock:
            for pod in list(self._pods.values()):
                if pod.kill_deadline is not None and now >= pod.kill_deadline:
                    self._signal(pod, signal.SIGKILL)
                    pod.kill_deadline = None
                code = pod.proc.poll()
                if code is None:
                    continue
                del self._pods[pod.name]
                changed = True
                self.log.event(
                    "pod",
                    pod.name,
                    "Exited",
                    f"exit code {code}",
                    address=pod.address,
                    exit_code=code,
                )
                self.log.metric("twin", "pod_ready", {"pod": pod.name, "address": pod.address}, 0)
                if pod.phase != "Terminating":  # crashed or killed from outside the twin
                    self._restarts.append(now + self._restart_delay())
                if pod.in_proxy:
                    self._drain(pod.address)
        return changed

    def _start_pending(self) -> bool:
        """Pending pods become Started when their HTTP port answers, then join HAProxy when
        their readiness endpoint says 200."""
        changed = False
        for pod in self.pods():
            if pod.phase != "Pending":
                continue
            base = f"http://127.0.0.1:{pod.http_port}/v2/health"
            if pod.started is None:
                if http_status(f"{base}/live", timeout=0.3) != 200:
                    continue
                pod.started = time.time()
                self.log.event("pod", pod.name, "Started", address=pod.address)
            if http_status(f"{base}/ready", timeout=0.3) == 200:
                self.runtime.add_server(pod.address, pod.http_port)
                with self._lock:
                    pod.in_proxy = True
                    pod.phase = "Running"
                changed = True
        return changed

    def _watch_readiness(self) -> None:
        status = {row["svname"]: row.get("status", "") for row in self.runtime.stat()}
        with self._lock:
            for pod in self._pods.values():
                if not pod.in_proxy:
                    continue
                ready = status.get(pod.address, "").startswith("UP") and pod.phase == "Running"
                if ready != pod.ready:
                    pod.ready = ready
                    reason = "Ready" if ready else "NotReady"
                    self.log.event(
                        "pod", pod.name, reason, status.get(pod.address, ""), address=pod.address
                    )
                    self.log.metric(
                        "twin", "pod_ready", {"pod": pod.name, "address": pod.address}, int(ready)
                    )
            self._record_replicas()

    def _record_replicas(self) -> None:
        ready = sum(1 for p in self._pods.values() if p.ready)
        if ready != self._last_ready:
            self._last_ready = ready
            self.log.metric("twin", "replicas_ready", {"deployment": self.spec.deployment}, ready)

    def _reconcile(self) -> bool:
        now = time.monotonic()
        with self._lock:
            live = [p for p in self._pods.values() if p.phase != "Terminating"]
            due = [t for t in self._restarts if t <= now]
            waiting = len(self._restarts) - len(due)
            missing = self.desired - len(live) - waiting
            if missing < 0 and self._restarts:  # scaled down while replacements were waiting
                drop = min(-missing, len(self._restarts))
                self._restarts.sort()
                del self._restarts[len(self._restarts) - drop :]
                return self._reconcile()
            if missing > 0 or due:
                self._restarts = [t for t in self._restarts if t > now]
                count = self.desired - len(live) - len(self._restarts)
                for _ in range(max(0, count)):
                    self._create()
                return count > 0
            if missing < 0:
                for pod in self._victims(live, -missing):
                    if pod.in_proxy:
                        self._drain(pod.address)  # out of rotation first, then SIGTERM
                        pod.in_proxy = False
                    pod.phase = "Terminating"
                    pod.ready = False
                    self._signal(pod, signal.SIGTERM)
                    pod.kill_deadline = now + 30 * self.spec.time_scale + 5
                    self.log.event("pod", pod.name, "Killing", "scale down", address=pod.address)
                return True
        return False

    @staticmethod
    def _victims(live: list[PodProc], n: int) -> list[PodProc]:
        # ReplicaSet order: not-ready before ready, then the newest first.
        return sorted(live, key=lambda p: (p.ready, -p.created))[:n]

    def _create(self) -> PodProc:
        name = pod_name(self.spec.deployment, self.hash, self._rng)
        grpc_port, http_port = free_port(), free_port()
        while http_port == grpc_port:
            http_port = free_port()
        log_path = self.run_dir / "pods" / f"{name}.log"
        proc = spawn(self.pod_command(name, grpc_port, http_port), log_path)
        pod = PodProc(name, grpc_port, http_port, proc, log_path, created=time.monotonic())
        self._pods[name] = pod
        self.log.event(
            "pod",
            name,
            "Created",
            f"pid {proc.pid}",
            address=pod.address,
            pid=proc.pid,
            http_port=http_port,
        )
        return pod

    def _drain(self, address: str) -> None:
        try:
            self.runtime.drain_server(address)
        except Exception as e:  # HAProxy gone during shutdown: nothing left to drain
            log.warning("drain %s failed: %s", address, e)
        self._to_delete.add(address)

    def _delete_drained(self) -> None:
        alive = {p.address for p in self.pods()}
        for addr in list(self._to_delete):
            if addr in alive:
                continue  # still terminating: its in-flight streams finish first
            if self.runtime.delete_server(addr):
                self._to_delete.discard(addr)

    @staticmethod
    def _signal(pod: PodProc, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            pod.proc.send_signal(sig)
