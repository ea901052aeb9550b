"""The stack a gate session runs against: `TwinStack` (boots the local twin, restarts it when it
is not quiet before a gate) or `ClusterStack` (a Kubernetes deployment it connects to). Both
give the gate the same things: a `Platform`, the deployment's facts read from the manifests,
the gRPC target, Prometheus, Envoy's admin and Envoy's access log.

Every gate starts from a quiet stack: nothing in flight, every pod ready, the manifests' replica
count. After a flood the autoscaler has scaled up and its scale-down window holds the count for
a while; restarting the twin (a few seconds here) is cheaper than waiting for it, and also
resets the autoscaler's stabilization memory, which would otherwise colour the next gate. A
cluster that is not quiet in time is an error: the gate cannot restart it.
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from loadgate.errors import UserError
from loadgate.gate.config import GateConfig
from loadgate.observe.envoy import EnvoyAdmin
from loadgate.observe.envoy_access import ProxyLog
from loadgate.observe.timeline import TimelineCollector
from loadgate.platform.base import Platform
from loadgate.platform.facts import DeploymentFacts, deployment_facts
from loadgate.schema import empty_proxy
from loadgate.twin.manifests import load_twin_spec

Say = Callable[[str], None]
SAMPLE_S = 0.5  # the platform's pods and replicas are sampled this often during a gate


class GateStack(ABC):
    kind: str = "abstract"

    def __init__(self, cfg: GateConfig, run_dir: Path, say: Say) -> None:
        self.cfg, self.run_dir, self.say = cfg, run_dir, say
        self.boot_s: list[float] = []
        self.restarts = 0

    # -- what a kind provides ---------------------------------------------------------------

    @property
    @abstractmethod
    def platform(self) -> Platform: ...

    @property
    @abstractmethod
    def facts(self) -> DeploymentFacts: ...

    @property
    @abstractmethod
    def envoy(self) -> EnvoyAdmin | None:
        """Envoy's admin interface, when the gate can reach it."""

    @property
    @abstractmethod
    def proxy_log(self) -> ProxyLog | None:
        """Envoy's access log, when the gate can read it."""

    @abstractmethod
    def start(self) -> GateStack: ...

    @abstractmethod
    def stop(self) -> None: ...

    @abstractmethod
    def recover(self) -> None:
        """The stack was not quiet in time: make it so, or raise UserError."""

    # -- the same on both kinds ---------------------------------------------------------------

    def describe(self) -> str:
        return f"{self.kind}: {self.facts.describe()}"

    @property
    def target(self) -> str:
        return self.cfg.target or self.platform.grpc_target

    @property
    def prometheus_url(self) -> str | None:
        return self.platform.prometheus_url

    def envoy_rq_active(self) -> int | None:
        """Requests Envoy has in flight to the model pods (None when Envoy cannot be asked)."""
        if self.envoy is None:
            return None
        try:
            status = self.envoy.clusters().get(self.facts.cluster_name)
        except UserError:
            return None
        return sum(h.rq_active for h in status.hosts.values()) if status else 0

    def quiet(self) -> bool:
        try:
            pods = self.platform.pods()
            reps = self.platform.replicas()
        except UserError:
            return False
        if self.envoy is not None and self.envoy_rq_active() != 0:
            return False
        busy = any((p.queue or 0) > 0 for p in pods)
        want = self.facts.replicas
        return reps.spec == want and len(pods) == want and all(p.ready for p in pods) and not busy

    def settle(self) -> float:
        """Wait for a quiet stack; `recover()` when it is not quiet in time. Returns seconds."""
        t0 = time.monotonic()
        deadline = t0 + self.cfg.stack.settle_timeout_s
        while time.monotonic() < deadline:
            if self.quiet():
                return time.monotonic() - t0
            if self.scaled_away():
                break  # scaled: the scale-down window alone outlasts a restart
            time.sleep(0.25)
        self.recover()
        return time.monotonic() - t0

    def scaled_away(self) -> bool:
        return False

    @property
    def observation_s(self) -> float:
        """How late the timeline may record a pod's readiness change: the collector's sampling
        interval (the twin's own log is exact to its 0.1 s reconcile tick)."""
        return SAMPLE_S

    def timeline_collector(self) -> TimelineCollector:
        return TimelineCollector(self.platform, self.prometheus_url, interval_s=SAMPLE_S)

    def mark_proxy_log(self) -> None:
        """Before a gate's load: the proxy records read after it start here."""
        if self.proxy_log is not None:
            self.proxy_log.mark()

    def proxy_records(self) -> pd.DataFrame:
        """Envoy's access log records since `mark_proxy_log()`, once the load has ended."""
        if self.proxy_log is None:
            return empty_proxy()
        return self.proxy_log.read_settled()


class TwinStack(GateStack):
    """The local twin, booted from the manifests with `stack.twin` overrides."""

    kind = "twin"

    def __init__(self, cfg: GateConfig, run_dir: Path, say: Say) -> None:
        from loadgate.twin.boot import twin_spec

        super().__init__(cfg, run_dir, say)
        # TwinOverrides has apply_overrides' keyword names, so one dict carries them all.
        self.spec = twin_spec(cfg.stack.manifests, **cfg.stack.twin.model_dump())
        self._facts = deployment_facts(self.spec)
        self.twin = None
        self._platform: Platform | None = None
        self._log: ProxyLog | None = None

    @property
    def platform(self) -> Platform:
        if self._platform is None:
            raise UserError("the twin is not up")
        return self._platform

    @property
    def facts(self) -> DeploymentFacts:
        return self._facts

    @property
    def envoy(self) -> EnvoyAdmin | None:
        return self.twin.envoy_admin() if self.twin is not None else None

    @property
    def proxy_log(self) -> ProxyLog | None:
        return self._log

    def start(self) -> TwinStack:
        from loadgate.observe.envoy_access import FileProxyLog
        from loadgate.twin.boot import boot_twin, time_scale_note

        t0 = time.monotonic()
        rd = self.run_dir / "twin" / str(len(self.boot_s) + 1)
        self.say(f"booting the twin ({self.facts.describe()}) in {rd}")
        if not self.boot_s:
            self.say(f"  {time_scale_note(self.spec.time_scale)}")
        self.twin = boot_twin(
            self.spec, rd, progress=lambda m: self.say(f"  twin: {m}"), wait_metrics=True
        )
        self._platform = self.twin.platform()
        self._log = FileProxyLog(self.twin.access_log)
        self.boot_s.append(time.monotonic() - t0)
        return self

    def stop(self) -> None:
        if self.twin is not None:
            self.twin.down()

    def scaled_away(self) -> bool:
        return self.platform.replicas().spec != self.facts.replicas

    @property
    def observation_s(self) -> float:
        from loadgate.twin.supervisor import TICK_S

        return TICK_S

    def recover(self) -> None:
        self.say("the twin is not quiet (scaled or busy): restarting it for a clean start")
        self.restarts += 1
        self.stop()
        self.start()


class ClusterStack(GateStack):
    """A deployed stack, through the Kubernetes API (`kubernetes:` in loadgate.yaml)."""

    kind = "kubernetes"

    def __init__(
        self, cfg: GateConfig, run_dir: Path, say: Say, cfg_source: str = "loadgate.yaml"
    ) -> None:
        super().__init__(cfg, run_dir, say)
        self.cfg_source = cfg_source
        # The same facts as the twin's, from the manifests the cluster was deployed from.
        self._facts = deployment_facts(load_twin_spec(cfg.stack.manifests), cluster=True)
        self._platform: Platform | None = None
        self._envoy: EnvoyAdmin | None = None
        self._log: ProxyLog | None = None

    @property
    def platform(self) -> Platform:
        if self._platform is None:
            raise UserError("not connected to the cluster")
        return self._platform

    @property
    def facts(self) -> DeploymentFacts:
        return self._facts

    @property
    def envoy(self) -> EnvoyAdmin | None:
        return self._envoy

    @property
    def proxy_log(self) -> ProxyLog | None:
        return self._log

    def start(self) -> ClusterStack:
        from loadgate.platform.kubernetes import KubernetesPlatform

        t0 = time.monotonic()
        plat = KubernetesPlatform.from_config(self.cfg.kubernetes or {}, source=self.cfg_source)
        self._platform = plat
        if plat.envoy_admin_url:
            self._envoy = EnvoyAdmin(plat.envoy_admin_url)
        self._log = plat.envoy_access_log()
        self.say(f"connected to {plat.host} (context {plat.context}, namespace {plat.namespace})")
        self.boot_s.append(time.monotonic() - t0)
        return self

    def stop(self) -> None:
        if self._platform is not None:
            with contextlib.suppress(Exception):
                self._platform.close()

    def recover(self) -> None:
        raise UserError(
            f"the stack is not quiet after {self.cfg.stack.settle_timeout_s:.0f}s "
            f"(want {self.facts.replicas} ready pods and nothing in flight)"
        )


def gate_stack(cfg: GateConfig, run_dir: Path, say: Say, cfg_source: str) -> GateStack:
    if cfg.stack.kind == "kubernetes":
        return ClusterStack(cfg, run_dir, say, cfg_source)
    return TwinStack(cfg, run_dir, say)
