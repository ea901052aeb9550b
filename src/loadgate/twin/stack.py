"""`Twin`: boots and stops the whole local stack (Envoy, Prometheus, pods, autoscaler, control
API) in one run directory.

    with Twin.up(spec, progress=print) as twin:
        channel = grpc.insecure_channel(twin.grpc_target)
        twin.platform().kill_pods(count=1)
        df = twin.timeline_frame()

Every child is spawned from one long-lived launcher thread (PDEATHSIG fires when the *thread*
that forked exits) or from the supervisor thread, and `down()` stops them all; a failure during
boot stops what was started and raises UserError with the last lines of the culprit's log.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from loadgate.errors import UserError
from loadgate.observe.envoy import EnvoyAdmin
from loadgate.procs import free_port, http_status, port_open, require_binary, spawn, stop
from loadgate.twin import envoy_proc, prometheus
from loadgate.twin.control import ControlServer
from loadgate.twin.eds import EdsFile
from loadgate.twin.envoy_bootstrap import (
    TwinPlacement,
    ingress_listener,
    listener_names,
    twin_bootstrap,
)
from loadgate.twin.eventlog import EventLog
from loadgate.twin.spec import TwinSpec
from loadgate.twin.supervisor import PodCommand, PodProc, Supervisor

if TYPE_CHECKING:
    import subprocess

    import pandas as pd

    from loadgate.platform.twin import TwinPlatform
    from loadgate.twin.kube_api import KubeApi
    from loadgate.twin.scaler import ScalerRunner

BOOT_TIMEOUT_S = 60.0
ACCESS_LOG = "access.log"


def modelserver_command(spec: TwinSpec) -> PodCommand:
    """Pods run `loadgate-modelserver` with the spec's batching, readiness and time scale."""
    from loadgate.modelserver.process import modelserver_cmd

    opts: dict = {
        "host": "127.0.0.1",  # the twin's pods live on loopback; Envoy knows them by port
        "time_scale": spec.time_scale,
        "max_batch_size": spec.max_batch_size,
        "token_chunk": spec.token_chunk,
        "ready_max_queue": spec.ready_max_queue or 0,
    }
    if spec.ready_max_queue:
        opts["ready_resume_queue"] = min(spec.ready_resume_queue, spec.ready_max_queue)

    def command(name: str, grpc_port: int, http_port: int) -> list[str]:
        return modelserver_cmd(name, grpc_port, http_port, **opts) + list(spec.modelserver_args)

    return command


def log_tail(path: Path, lines: int = 3) -> str:
    """The telling part of a child's log on one line: its first alert/error line, if any, and
    its last lines."""
    try:
        text = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "(no log)"
    alerts = [ln for ln in text if re.search(r"alert|error|fatal", ln, re.IGNORECASE)]
    picked = alerts[:1] + [ln for ln in text[-lines:] if ln not in alerts[:1]]
    return " | ".join(picked) or "(empty log)"


class Twin:
    """A running twin. Create with `Twin.up(...)`; attributes are set once boot succeeded."""

    def __init__(self, spec: TwinSpec, run_dir: Path, progress: Callable[[str], None]) -> None:
        self.spec = spec
        self.run_dir = run_dir
        self._progress = progress
        self.log = EventLog()
        self._launcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="twin-launcher")
        self._procs: dict[str, subprocess.Popen] = {}
        self.supervisor: Supervisor | None = None
        self.scaler: ScalerRunner | None = None
        self.control: ControlServer | None = None
        self.kube_api: KubeApi | None = None
        self.kube_api_url = ""
        self.kubeconfig_path: Path | None = None
        self._down_lock = threading.Lock()
        self._is_down = False
        self.grpc_target = self.prometheus_url = self.control_url = self.envoy_admin_url = ""
        self.envoy_version = ""
        self.access_log = run_dir / ACCESS_LOG
        self.started = time.time()

    # -- boot ---------------------------------------------------------------------------------

    @classmethod
    def up(
        cls,
        spec: TwinSpec,
        run_dir: Path | None = None,
        progress: Callable[[str], None] | None = None,
        *,
        pod_command: PodCommand | None = None,
        kube_api: bool = False,
    ) -> Twin:
        """Boot everything; raises UserError (after cleaning up) when something cannot start.
        `pod_command` replaces loadgate-modelserver (tests of the plumbing only); `kube_api`
        also serves the emulated Kubernetes API and writes its kubeconfig (`kube_api.py`)."""
        envoy_bin, envoy_version = envoy_proc.envoy_binary()
        prom_bin = require_binary(
            "prometheus", "install it with `make setup` (Debian package 'prometheus')"
        )
        if run_dir is None:
            run_dir = Path(tempfile.mkdtemp(prefix="loadgate-twin-"))
        run_dir = Path(run_dir).resolve()
        run_dir.mkdir(parents=True, exist_ok=True)
        twin = cls(spec, run_dir, progress or (lambda _msg: None))
        try:
            twin.envoy_version = envoy_version
            twin._boot(envoy_bin, prom_bin, pod_command or modelserver_command(spec))
            if kube_api:
                twin._start_kube_api()
        except BaseException:
            twin.down()
            raise
        return twin

    def _spawn(self, key: str, cmd: list[str]) -> subprocess.Popen:
        proc = self._launcher.submit(spawn, cmd, self.run_dir / f"{key}.log").result()
        self._procs[key] = proc
        return proc

    def _boot(self, envoy_bin: str, prom_bin: str, pod_command: PodCommand) -> None:
        t0 = time.monotonic()
        spec, rd = self.spec, self.run_dir
        boot = spec.envoy_bootstrap
        ingress = ingress_listener(boot, spec.cluster_name)
        at = TwinPlacement(
            admin_port=free_port(),
            listener_ports={name: free_port() for name in listener_names(boot)},
            eds_path=rd / "eds.json",
            access_log_path=self.access_log,
        )
        config = rd / "envoy.yaml"
        config.write_text(
            "# The shipped Envoy bootstrap as the twin runs it (loadgate.twin.envoy_bootstrap):\n"
            "# only bind addresses, the model cluster's endpoint source and the access log differ.\n"
            + yaml.safe_dump(twin_bootstrap(boot, spec.cluster_name, at), sort_keys=False)
        )
        eds = EdsFile(at.eds_path, spec.cluster_name)
        eds.write([])
        prom_port = free_port()
        self.envoy_admin_url = f"http://127.0.0.1:{at.admin_port}"
        prom_cfg = prometheus.write_files(rd, f"127.0.0.1:{at.admin_port}")

        grpc_port = at.listener_ports[ingress]
        self._say(
            f"starting Envoy {self.envoy_version} (gRPC 127.0.0.1:{grpc_port}, "
            f"{spec.envoy.lb_policy}, max_requests {spec.max_requests or 'none'})"
        )
        self._spawn("envoy", envoy_proc.command(envoy_bin, config, spec))
        self._say(f"starting Prometheus (127.0.0.1:{prom_port})")
        self._spawn("prometheus", prometheus.command(prom_bin, prom_cfg, rd, prom_port))

        self.grpc_target = f"127.0.0.1:{grpc_port}"
        self.prometheus_url = f"http://127.0.0.1:{prom_port}"
        self._wait(
            "envoy",
            lambda: (
                http_status(f"{self.envoy_admin_url}/ready", timeout=0.5) == 200
                and port_open("127.0.0.1", grpc_port)
            ),
        )

        self._say(f"starting {spec.replicas} model pod(s) of {spec.deployment}")
        self.supervisor = Supervisor(
            spec,
            rd,
            eds,
            EnvoyAdmin(self.envoy_admin_url, timeout=2.0),
            pod_command,
            self.log,
            self._pods_changed,
        )
        self.supervisor.scale(spec.replicas)
        self.supervisor.start()  # its thread spawns the pods, so they die with it
        self._wait_pods(spec.replicas)
        self._say(f"{spec.replicas} pod(s) ready and healthy in Envoy")
        self._wait("prometheus", lambda: http_status(f"{self.prometheus_url}/-/ready") == 200)

        self.control = ControlServer(self)
        self.control_url = self.control.url
        self.control.start()
        if spec.autoscaler is not None:
            from loadgate.twin.scaler import ScalerRunner

            self.scaler = ScalerRunner(spec, self.prometheus_url, self.supervisor, self.log)
            self.scaler.start()
            self._say(
                f"autoscaler {spec.autoscaler.name} polling every {self.scaler.interval_s:.2f}s"
            )
        self._say(f"twin up in {time.monotonic() - t0:.1f}s")

    def _start_kube_api(self) -> None:
        from loadgate.twin.kube_api import CONTEXT, KUBECONFIG, KubeApi

        self.kube_api = KubeApi(self)
        self.kube_api.start()
        self.kube_api_url = self.kube_api.url
        self.kubeconfig_path = self.kube_api.write_kubeconfig(self.run_dir / KUBECONFIG)
        self._say(
            f"Kubernetes API (emulated) at {self.kube_api_url}; kubeconfig {self.kubeconfig_path}"
            f" (context {CONTEXT}, namespace {self.spec.namespace})"
        )

    def kubernetes_block(self) -> dict[str, object] | None:
        """The `kubernetes:` block of loadgate.yaml that points KubernetesPlatform at this
        twin's emulated API (None without `kube_api`)."""
        if self.kube_api is None:
            return None
        from loadgate.twin.kube_api import CONTEXT

        a = self.spec.autoscaler
        return {
            "grpc_target": self.grpc_target,
            "kubeconfig": str(self.kubeconfig_path),
            "context": CONTEXT,
            "namespace": self.spec.namespace,
            "deployment": self.spec.deployment,
            "scaled_object": a.name if a is not None else None,
            "prometheus_url": self.prometheus_url,
            # on a cluster: a port-forward to Envoy's admin (deploy/envoy 9901)
            "envoy_admin_url": self.envoy_admin_url,
            "allowed": [f"{CONTEXT}/{self.spec.namespace}"],
        }

    def wait_metrics(self, timeout: float = 30.0) -> None:
        """Block until Prometheus has recorded the proxy's series. Prometheus applies discovered
        targets every 5 s, so the first samples exist ~5-6 s after boot; boot does not wait."""
        q = f'envoy_cluster_upstream_rq_active{{envoy_cluster_name="{self.spec.cluster_name}"}}'

        def recorded() -> bool:
            try:
                return bool(prometheus.query(self.prometheus_url, q, timeout=1.0))
            except OSError:
                return False

        self._wait("Prometheus' first scrape of Envoy", recorded, timeout=timeout)

    def _say(self, msg: str) -> None:
        self._progress(msg)

    def _check_children(self) -> None:
        for key, proc in self._procs.items():
            if proc.poll() is not None:
                raise UserError(
                    f"{key} exited during boot (code {proc.returncode}): "
                    f"{log_tail(self.run_dir / f'{key}.log')}"
                )

    def _wait(self, what: str, pred: Callable[[], bool], timeout: float = BOOT_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            self._check_children()
            if time.monotonic() > deadline:
                raise UserError(f"{what} not ready after {timeout:.0f}s; see {self.run_dir}")
            time.sleep(0.05)

    def _wait_pods(self, n: int) -> None:
        def ready() -> bool:
            sup = self.supervisor
            assert sup is not None
            for e in self.log.events():
                if e.reason != "Exited":
                    continue
                log_text = (self.run_dir / "pods" / f"{e.name}.log").read_text(errors="replace")
                if "address already in use" in log_text.lower():
                    continue  # a free-port race: the supervisor replaces it on new ports
                tail = log_tail(self.run_dir / "pods" / f"{e.name}.log")
                raise UserError(f"pod {e.name} exited during boot ({e.message}): {tail}")
            # A transient supervisor error is retried on the next tick; a persistent one ends in
            # the boot timeout below. Serving = ready for the kubelet and healthy for Envoy.
            healthy = [p for p in sup.pods() if p.in_endpoints and p.envoy_health == "healthy"]
            return len(healthy) >= n

        try:
            self._wait(f"{n} model pod(s)", ready)
        except UserError as e:
            err = self.supervisor.error if self.supervisor else None
            if err is None or "exited during boot" in str(e):
                raise
            raise UserError(f"{e} (supervisor: {type(err).__name__}: {err})") from None

    def _pods_changed(self, pods: list[PodProc]) -> None:
        targets = [
            (p.name, f"127.0.0.1:{p.http_port}", {"deployment": self.spec.deployment}) for p in pods
        ]
        prometheus.write_targets(self.run_dir / "pods.json", targets)

    # -- use ----------------------------------------------------------------------------------

    def platform(self) -> TwinPlatform:
        from loadgate.platform.twin import TwinPlatform

        return TwinPlatform(self.control_url)

    def timeline_frame(self, since: float = 0) -> pd.DataFrame:
        """Pod events, readiness, replicas and autoscaler decisions (TIMELINE contract)."""
        return self.log.frame(since)

    def envoy_admin(self) -> EnvoyAdmin:
        return EnvoyAdmin(self.envoy_admin_url)

    def process(self, key: str) -> subprocess.Popen | None:
        """A child the twin started itself ("envoy", "prometheus"), None if not (yet) started."""
        return self._procs.get(key)

    def endpoints(self) -> dict[str, str]:
        out = {
            "grpc_target": self.grpc_target,
            "prometheus_url": self.prometheus_url,
            "control_url": self.control_url,
            "envoy_admin_url": self.envoy_admin_url,
            "envoy_version": self.envoy_version,
            "access_log": str(self.access_log),
            "run_dir": str(self.run_dir),
        }
        if self.kube_api is not None:
            from loadgate.twin.kube_api import CONTEXT

            out.update(
                kube_api_url=self.kube_api_url,
                kubeconfig=str(self.kubeconfig_path),
                kube_context=CONTEXT,
            )
        return out

    # -- teardown -------------------------------------------------------------------------------

    def down(self) -> None:
        """Stop everything this twin started. Idempotent; safe after a failed boot."""
        with self._down_lock:
            if self._is_down:
                return
            self._is_down = True
        with contextlib.suppress(Exception):
            if self.kube_api is not None:  # first: its watches end before the pods do
                self.kube_api.stop()
        with contextlib.suppress(Exception):
            if self.scaler is not None:
                self.scaler.stop()
        with contextlib.suppress(Exception):
            if self.control is not None:
                self.control.stop()
        prom = self._procs.get("prometheus")
        if prom is not None and prom.poll() is None:
            prom.terminate()  # flushes its TSDB while the pods stop
        with contextlib.suppress(Exception):
            if self.supervisor is not None:
                self.supervisor.shutdown()
        for key in ("prometheus", "envoy"):  # Envoy flushes its access log on SIGTERM
            with contextlib.suppress(Exception):
                stop(self._procs.get(key), grace=5)
        self._launcher.shutdown(wait=True)

    def __enter__(self) -> Twin:
        return self

    def __exit__(self, *exc) -> None:
        self.down()
