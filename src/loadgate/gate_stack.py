"""The stack a gate session runs against: the local twin (booted once, restarted only when it is
not quiet before a gate) or a Kubernetes deployment it connects to.

Every gate starts from a quiet stack: nothing in flight, every pod ready, the manifests' replica
count. After a flood the autoscaler has scaled up and its scale-down window holds the count for
a while; restarting the twin (about 7 s here) is cheaper than waiting for it, and also resets the
autoscaler's stabilization memory, which would otherwise colour the next gate.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from loadgate.errors import UserError
from loadgate.gateconfig import GateConfig
from loadgate.observe.envoy_access import AccessLogTail
from loadgate.schema import TIMELINE_COLUMNS, empty_proxy, empty_timeline, encode_labels

Say = Callable[[str], None]

# Prometheus series each gate's timeline gets: (query, metric name in the timeline). Pod queues
# are summed over models per pod, as the readiness rule counts them.
PROM_SERIES: tuple[tuple[str, str], ...] = (
    ("sum by (pod) (nv_inference_pending_request_count)", "nv_inference_pending_request_count"),
    ("envoy_cluster_upstream_rq_active", "envoy_cluster_upstream_rq_active"),
    ("envoy_cluster_upstream_rq_total", "envoy_cluster_upstream_rq_total"),
    # Breaker overflow of max_requests: active_overflow on Envoy >= 1.28 (pending_overflow before).
    ("envoy_cluster_upstream_rq_active_overflow", "envoy_cluster_upstream_rq_active_overflow"),
    ("envoy_cluster_upstream_rq_pending_overflow", "envoy_cluster_upstream_rq_pending_overflow"),
)


class GateStack:
    """Boots or connects to the stack; `settle()` before each gate; `timeline(t0, t1)` after."""

    def __init__(self, cfg: GateConfig, run_dir: Path, say: Say) -> None:
        self.cfg, self.run_dir, self.say = cfg, run_dir, say
        self.twin: Any = None
        self.spec: Any = None
        self._platform: Any = None
        self._boots = 0
        self.boot_s: list[float] = []
        self.restarts = 0
        self._access: AccessLogTail | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> GateStack:
        if self.cfg.stack.kind == "twin":
            from loadgate.twin.manifests import apply_overrides, load_twin_spec

            o = self.cfg.stack.twin
            # TwinOverrides has apply_overrides' keyword names, so one dict carries them all.
            self.spec = apply_overrides(load_twin_spec(self.cfg.stack.manifests), **o.model_dump())
            self._boot()
        else:
            from loadgate.platform.kubernetes import KubernetesPlatform

            self._platform = KubernetesPlatform.from_config(self.cfg.kubernetes or {})
        return self

    def _boot(self) -> None:
        from loadgate.twin.stack import Twin

        t0 = time.monotonic()
        self._boots += 1
        rd = self.run_dir / "twin" / str(self._boots)
        self.say(f"booting the twin ({self.describe()}) in {rd}")
        self.twin = Twin.up(self.spec, run_dir=rd, progress=lambda m: self.say(f"  twin: {m}"))
        if hasattr(self.twin, "wait_metrics"):
            self.twin.wait_metrics()
        self._platform = self.twin.platform()
        self._access = AccessLogTail(self.twin.access_log)
        self.boot_s.append(time.monotonic() - t0)

    def restart(self) -> None:
        self.restarts += 1
        self.twin.down()
        self._boot()

    def stop(self) -> None:
        if self.twin is not None:
            self.twin.down()
        with contextlib.suppress(Exception):
            if self._platform is not None:
                self._platform.close()

    # -- facts ----------------------------------------------------------------------------------

    def describe(self) -> str:
        if self.spec is None:
            return f"kubernetes {(self.cfg.kubernetes or {}).get('context', '')}".strip()
        s = self.spec
        parts = [
            f"{s.replicas} pods",
            s.envoy.lb_policy,
            f"max_requests {s.max_requests or 'none'}",
            f"readiness queue > {s.ready_max_queue or 'off'}",
            "autoscaler " + ("on" if s.autoscaler is not None else "off"),
            f"time_scale {s.time_scale:g}",
        ]
        return ", ".join(parts)

    @property
    def name(self) -> str:
        return "twin" if self.cfg.stack.kind == "twin" else "kubernetes"

    @property
    def platform(self) -> Any:
        return self._platform

    @property
    def target(self) -> str:
        if self.cfg.target:
            return self.cfg.target
        return self.twin.grpc_target if self.twin is not None else self._platform.grpc_target()

    @property
    def prometheus_url(self) -> str | None:
        if self.twin is not None:
            return self.twin.prometheus_url
        return self._platform.prometheus_url()

    @property
    def base_replicas(self) -> int:
        if self.spec is not None:
            return int(self.spec.replicas)
        return int(self._platform.replicas().spec)

    @property
    def facts(self) -> dict[str, Any]:
        """Numbers the gates need from the deployment (batch, limits, autoscaler target)."""
        s = self.spec
        if s is None:
            return {"batch_size": 8, "ready_max_queue": 50, "probe_s": 1.0, "target": 16.0}
        a = s.autoscaler
        return {
            "batch_size": s.max_batch_size,
            "ready_max_queue": s.ready_max_queue,
            "probe_s": s.probe_s,
            "target": float(a.threshold) if a is not None else 16.0,
            "max_replicas": a.max_replicas if a is not None else None,
            "time_scale": s.time_scale,
        }

    # -- quiet before a gate ----------------------------------------------------------------------

    def quiet(self) -> bool:
        try:
            pods = self._platform.pods()
            reps = self._platform.replicas()
        except UserError:
            return False
        if self.twin is not None and self.envoy_rq_active() != 0:
            return False
        busy = any((p.queue or 0) > 0 for p in pods)
        want = self.base_replicas
        return reps.spec == want and len(pods) == want and all(p.ready for p in pods) and not busy

    def settle(self) -> float:
        """Wait for a quiet stack; restart the twin when it is not quiet in time. Returns seconds."""
        t0 = time.monotonic()
        deadline = t0 + self.cfg.stack.settle_timeout_s
        while time.monotonic() < deadline:
            if self.quiet():
                return time.monotonic() - t0
            if self.twin is not None and self._platform.replicas().spec != self.base_replicas:
                break  # scaled: the scale-down window alone outlasts a restart
            time.sleep(0.25)
        if self.twin is None:
            raise UserError(
                f"the stack is not quiet after {self.cfg.stack.settle_timeout_s:.0f}s "
                f"(want {self.base_replicas} ready pods and nothing in flight)"
            )
        self.say("the twin is not quiet (scaled or busy): restarting it for a clean start")
        self.restart()
        return time.monotonic() - t0

    def envoy_rq_active(self) -> int | None:
        """Requests Envoy has in flight to the model pods (None when Envoy cannot be asked)."""
        try:
            status = self.twin.envoy_admin().clusters().get(self.spec.cluster_name)
        except UserError:
            return None
        return sum(h.rq_active for h in status.hosts.values()) if status else 0

    # -- after a gate -----------------------------------------------------------------------------

    def mark_proxy_log(self) -> None:
        """Before a gate's load: the proxy records read after it start here."""
        if self._access is not None:
            self._access.skip_to_end()

    def proxy_records(self, timeout: float = 5.0) -> pd.DataFrame:
        """Envoy's access log lines since `mark_proxy_log()` (the twin's file), read once the
        load has ended. Envoy flushes the log every FLUSH_MS: the records are complete when two
        reads a flush interval and a half apart bring nothing new."""
        if self._access is None:
            return empty_proxy()
        from loadgate.twin.envoy_proc import FLUSH_MS

        frames, quiet = [], 0
        deadline = time.monotonic() + timeout
        while quiet < 2 and time.monotonic() < deadline:
            frame = self._access.read()
            quiet = 0 if len(frame) else quiet + 1
            if len(frame):
                frames.append(frame)
            time.sleep(1.5 * FLUSH_MS / 1000.0)
        return pd.concat(frames, ignore_index=True) if frames else empty_proxy()

    def timeline(self, t0: float, t1: float) -> pd.DataFrame:
        """Platform rows (pod events, readiness, replicas, autoscaler) + Prometheus series.
        Platform rows are kept from the stack's start: a state set before the gate (3 ready
        replicas, a pod ready since boot) is only recorded when it changed."""
        frames = [self._platform_rows(0.0)]
        url = self.prometheus_url
        if url:
            from loadgate.observe.prometheus import Prometheus

            prom = Prometheus(url)
            for query, metric in PROM_SERIES:
                try:
                    df = prom.range(query, t0, t1, step=0.5)
                except UserError as e:
                    self.say(f"  (no {metric}: {e})")
                    continue
                frames.append(df.assign(metric=metric))
        frames = [f for f in frames if len(f)]
        if not frames:
            return empty_timeline()
        out = pd.concat(frames, ignore_index=True)
        return out[out["time"] <= t1].sort_values("time", kind="stable").reset_index(drop=True)

    def _platform_rows(self, since: float) -> pd.DataFrame:
        if self.twin is not None:
            return self.twin.timeline_frame(since)
        rows = [
            (
                e.time,
                "kubernetes",
                f"{e.kind}_event",
                encode_labels({"name": e.name, "reason": e.reason}),
                1.0,
            )
            for e in self._platform.events(since)
        ]
        return pd.DataFrame(rows, columns=TIMELINE_COLUMNS)
