"""The emulated Deployment controller, kubelet readiness probe and EndpointSlice controller:
keeps `replicas` pod processes and tells Envoy, through its EDS file, which of them are ready.

One thread reconciles ~10 times a second: it notices exits, replaces killed pods after
`restart_delay_s × time_scale` under a new name, probes each pod's readiness as the kubelet would
(the model container's readinessProbe: period, timeout, thresholds), writes the ready pods to the
EDS file (a pod being deleted leaves it at once, as a terminating pod leaves its
EndpointSlice), and records Envoy's own view of each pod (health flags from admin /clusters).
"Ready" is the kubelet's verdict; whether Envoy still routes to a pod is Envoy's (it keeps a
removed host that still passes its health check until it fails one). Pods are spawned by this
thread, so they die with it (PDEATHSIG); HTTP checks run in a small pool so a slow pod never
stalls the loop.
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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from loadgate.observe.envoy import ClusterStatus, EnvoyAdmin
from loadgate.procs import free_port, http_status, spawn, stop
from loadgate.twin.eds import EdsEndpoint, EdsFile
from loadgate.twin.eventlog import EventLog
from loadgate.twin.kubelet import ProbeSpec, ProbeState
from loadgate.twin.spec import TwinSpec

log = logging.getLogger(__name__)

PodCommand = Callable[[str, int, int], list[str]]  # (pod name, grpc port, http port) -> argv
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' rand.SafeEncodeString alphabet
TICK_S = 0.1
ENVOY_POLL_S = 0.2  # how often Envoy's view of the pods (health flags, rq_active) is read
# A pod without a readinessProbe is ready once its container runs (Kubernetes' rule); the twin
# knows it runs when /v2/health/live answers.
_NO_PROBE = ProbeSpec(path="/v2/health/live", period_s=1.0, failure_threshold=1)


def safe_hash(*parts: object) -> str:
    """10 characters of Kubernetes' safe alphabet, stable for the same parts."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:10])


def template_hash(spec: TwinSpec) -> str:
    """A stable pod-template-hash: same spec, same hash, as a Deployment's ReplicaSet."""
    return safe_hash(spec.deployment, spec.modelserver_args)


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
    started: float | None = None  # epoch s the container answered /v2/health/live
    ready: bool = False  # the kubelet's readiness verdict
    phase: str = "Pending"  # Pending | Running | Terminating
    probe: ProbeState | None = None
    kill_deadline: float | None = None  # SIGKILL when the grace period runs out
    check: Future | None = None  # the HTTP check in flight, if any
    envoy_health: str = ""  # Envoy's health flags for this host ("" while Envoy has none)
    envoy_rq_active: int | None = None
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def in_endpoints(self) -> bool:
        """In the EndpointSlice's ready endpoints: ready and not being deleted."""
        return self.ready and self.phase == "Running"


class Supervisor:
    def __init__(
        self,
        spec: TwinSpec,
        run_dir: Path,
        eds: EdsFile,
        envoy: EnvoyAdmin | None,
        pod_command: PodCommand,
        log: EventLog,
        on_pods_changed: Callable[[list[PodProc]], None],
    ) -> None:
        self.spec = spec
        self.run_dir = run_dir
        self.eds = eds
        self.envoy = envoy
        self.pod_command = pod_command
        self.log = log
        self.on_pods_changed = on_pods_changed
        self.desired = spec.replicas
        self.hash = template_hash(spec)
        self.probe_spec = spec.readiness_probe or _NO_PROBE
        self._rng = random.Random()
        self._lock = threading.RLock()
        self._pods: dict[str, PodProc] = {}
        self._restarts: list[float] = []  # monotonic times at which a replacement is created
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="twin-supervisor", daemon=True)
        self._checks = ThreadPoolExecutor(max_workers=8, thread_name_prefix="twin-probe")
        self._envoy_poll: Future | None = None
        self._envoy_due = 0.0
        self.envoy_error: str | None = None
        self.error: BaseException | None = None
        self._last_ready: int | None = None
        (run_dir / "pods").mkdir(parents=True, exist_ok=True)

    # -- public API (any thread) -------------------------------------------------------------

    def start(self) -> None:
        self.eds.write([])  # Envoy starts with an empty cluster; pods join as they get ready
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
                    from_replicas=self.desired,
                )
            self.desired = replicas
            self.log.metric("twin", "replicas_spec", {"deployment": self.spec.deployment}, replicas)

    def kill(self, names: list[str], grace_period: float = 0.0) -> list[str]:
        """Delete pods as `kubectl delete pod` would: out of the endpoints at once, SIGTERM +
        grace (SIGKILL at 0). The ReplicaSet creates each replacement after the restart delay."""
        killed = []
        with self._lock:
            for name in names:
                pod = self._pods.get(name)
                if pod is None or pod.phase == "Terminating":
                    continue
                sig = signal.SIGKILL if grace_period <= 0 else signal.SIGTERM
                self._terminate(pod, sig, grace_period)
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
            self._publish_endpoints()
        return killed

    def ready_count(self) -> int:
        with self._lock:
            return sum(1 for p in self._pods.values() if p.in_endpoints)

    def shutdown(self, grace: float = 3.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
        self._checks.shutdown(wait=False, cancel_futures=True)
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
        self._probe()
        self._watch_envoy()
        changed |= self._reconcile()
        with self._lock:
            self._publish_endpoints()
            self._record_replicas()
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
                if pod.ready:
                    self._set_ready(pod, False, "container exited")
                if pod.phase != "Terminating":  # crashed or killed from outside the twin
                    self._restarts.append(now + self._restart_delay())
        return changed

    def _probe(self) -> None:
        """Start the HTTP checks that are due; apply the ones that finished. A pending pod is
        Started once /v2/health/live answers; from then on the readiness probe runs."""
        now = time.monotonic()
        for pod in self.pods():
            if pod.check is not None:
                if not pod.check.done():
                    continue
                ok = pod.check.result() == 200
                pod.check = None
                self._apply_check(pod, ok, now)
                continue
            if pod.phase == "Terminating":
                continue
            if pod.started is None:
                url, timeout = f"http://127.0.0.1:{pod.http_port}/v2/health/live", 0.5
            elif pod.probe is not None and pod.probe.due(now):
                url = f"http://127.0.0.1:{pod.http_port}{self.probe_spec.path}"
                timeout = self.probe_spec.timeout_s
            else:
                continue
            pod.check = self._checks.submit(http_status, url, timeout)

    def _apply_check(self, pod: PodProc, ok: bool, now: float) -> None:
        with self._lock:
            if pod.name not in self._pods or pod.phase == "Terminating":
                return
            if pod.started is None:
                if ok:
                    pod.started = time.time()
                    pod.phase = "Running"
                    pod.probe = ProbeState(self.probe_spec, started=now)
                    self.log.event("pod", pod.name, "Started", address=pod.address)
                return
            assert pod.probe is not None
            became = pod.probe.observe(ok, now)
            if became is not None:
                self._set_ready(pod, became, "readiness probe " + ("passed" if ok else "failed"))

    def _set_ready(self, pod: PodProc, ready: bool, why: str) -> None:
        pod.ready = ready
        self.log.event("pod", pod.name, "Ready" if ready else "NotReady", why, address=pod.address)
        labels = {"pod": pod.name, "address": pod.address}
        self.log.metric("twin", "pod_ready", labels, int(ready))

    def _publish_endpoints(self) -> None:
        """The EndpointSlice: every ready pod that is not being deleted (called under the lock)."""
        endpoints = [
            EdsEndpoint(p.name, "127.0.0.1", p.grpc_port, p.http_port)
            for p in self._pods.values()
            if p.in_endpoints
        ]
        if self.eds.write(endpoints):
            self.log.metric(
                "twin", "endpoints", {"deployment": self.spec.deployment}, len(endpoints)
            )

    def _watch_envoy(self) -> None:
        """Envoy's own view of each pod (health flags, requests in flight), recorded on change."""
        if self.envoy is None:
            return
        poll = self._envoy_poll
        if poll is not None:
            if not poll.done():
                return
            self._envoy_poll = None
            try:
                status: ClusterStatus | None = poll.result().get(self.spec.cluster_name)
                self.envoy_error = None
            except Exception as e:  # Envoy busy or restarting: keep the last view
                self.envoy_error = str(e)
                return
            hosts = status.hosts if status is not None else {}
            with self._lock:
                for pod in self._pods.values():
                    h = hosts.get(pod.address)
                    health = h.health_flags if h is not None else ""
                    pod.envoy_rq_active = h.rq_active if h is not None else None
                    if health != pod.envoy_health:
                        pod.envoy_health = health
                        labels = {"pod": pod.name, "address": pod.address, "flags": health}
                        self.log.metric("envoy", "envoy_healthy", labels, int(health == "healthy"))
        now = time.monotonic()
        if now >= self._envoy_due:
            self._envoy_due = now + ENVOY_POLL_S
            self._envoy_poll = self._checks.submit(self.envoy.clusters)

    def _record_replicas(self) -> None:
        ready = sum(1 for p in self._pods.values() if p.in_endpoints)
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
                    # Out of the endpoints first (the pod is terminating), then SIGTERM.
                    self._terminate(pod, signal.SIGTERM, 30 * self.spec.time_scale + 5)
                    self.log.event("pod", pod.name, "Killing", "scale down", address=pod.address)
                return True
        return False

    def _terminate(self, pod: PodProc, sig: signal.Signals, grace: float) -> None:
        """A pod being deleted: terminating (out of the endpoints), signalled, SIGKILLed when
        its grace runs out. Called under the lock."""
        if pod.ready:
            self._set_ready(pod, False, "terminating")
        pod.phase = "Terminating"
        self._signal(pod, sig)
        pod.kill_deadline = time.monotonic() + grace if sig != signal.SIGKILL else None

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

    @staticmethod
    def _signal(pod: PodProc, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            pod.proc.send_signal(sig)
