"""The autoscaler runner: KEDA's loop around the emulated HPA maths.

Every `Autoscaler.interval_s` (real seconds) it runs the ScaledObject's query *verbatim* against
the twin's Prometheus, asks `Autoscaler.decide` what to do, scales the supervisor when the
decision changes the replica count, and records every decision in the event log.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from loadgate.twin import prometheus
from loadgate.twin.eventlog import EventLog
from loadgate.twin.spec import TwinSpec

if TYPE_CHECKING:
    from loadgate.twin.autoscaler import Decision

log = logging.getLogger(__name__)

QueryFn = Callable[[str, str], float | None]


def target_replicas(decision: Any, current: int) -> int:
    """Replicas to apply (`Decision.applied`; equal to current when nothing changes)."""
    applied = getattr(decision, "applied", None)
    return current if applied is None else int(applied)


class ScalerRunner:
    def __init__(
        self,
        spec: TwinSpec,
        prometheus_url: str,
        supervisor: Any,  # needs .desired and .scale(n)
        log_: EventLog,
        autoscaler: Any | None = None,
        query: QueryFn | None = None,
    ) -> None:
        if spec.autoscaler is None:
            raise ValueError("spec has no autoscaler")
        if autoscaler is None:
            from loadgate.twin.autoscaler import Autoscaler

            autoscaler = Autoscaler(spec.autoscaler, spec.time_scale)
        self.spec = spec
        self.so = spec.autoscaler
        self.autoscaler = autoscaler
        self.interval_s = float(autoscaler.interval_s)
        self.prometheus_url = prometheus_url
        self.supervisor = supervisor
        self.log = log_
        self._query = query or (lambda url, q: prometheus.instant_value(url, q, timeout=2.0))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="twin-autoscaler", daemon=True)
        self.last_decision: Any = None
        self.last_by_actor: dict[str, Decision] = {}  # the last of "keda", "hpa", "none"
        self.last_error: str | None = None
        self.failures = 0  # consecutive failed polls (KEDA's numberOfFailures)
        self.decisions = 0
        self._seen_value = False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.step(time.time())
            except Exception as e:  # a bad tick must not end autoscaling
                log.exception("autoscaler step failed")
                self.last_error = f"{type(e).__name__}: {e}"

    def step(self, now: float) -> Any:
        """One poll: query, decide, scale, record. Returns the Decision (None while Prometheus
        has no sample yet)."""
        try:
            value = self._query(self.prometheus_url, self.so.query)
            self.last_error = None
        except Exception as e:  # KEDA reports the trigger error and keeps the replica count
            value = None
            self.last_error = f"query failed: {e}"
        if value is None and not self._seen_value:
            # Prometheus' first scrape is ~5 s after boot: an empty result then means "no data
            # yet", not 0 (which could scale down a twin that just booted).
            self.last_error = self.last_error or "waiting for the first sample"
            return None
        self._seen_value = True
        current = int(self.supervisor.desired)
        ready = getattr(self.supervisor, "ready_count", lambda: None)()
        decision = self.autoscaler.decide(now, value, current, ready)
        target = target_replicas(decision, current)
        self.last_decision = decision
        self.last_by_actor[str(getattr(decision, "actor", ""))] = decision
        failed = self.last_error is not None or decision.reason == "metric_error"
        self.failures = self.failures + 1 if failed else 0
        self.decisions += 1
        labels = {"scaledobject": self.so.name}
        self.log.metric("autoscaler", "autoscaler_metric", labels, value)
        self.log.metric(
            "autoscaler",
            "autoscaler_desired",
            {
                **labels,
                "reason": str(decision.reason),
                "actor": str(getattr(decision, "actor", "")),
                "current": current,
                "applied": target,
            },
            float(decision.desired),
        )
        if target != current:
            self.supervisor.scale(target)
            self.log.event(
                "autoscaler",
                f"keda-hpa-{self.so.name}",
                "SuccessfulRescale",
                f"New size: {target}; reason: {getattr(decision, 'message', decision.reason)}",
                metric_value=value,
                current=current,
                desired=decision.desired,
            )
        return decision

    def status(self) -> dict[str, Any]:
        d = self.last_decision
        last = None
        if d is not None:
            last = {
                k: getattr(d, k, None)
                for k in (
                    "time",
                    "metric_value",
                    "current",
                    "desired",
                    "applied",
                    "reason",
                    "message",
                    "actor",
                )
            }
            mv = last.get("metric_value")
            if isinstance(mv, float) and math.isnan(mv):
                last["metric_value"] = None
        return {
            "active": True,
            "interval_s": self.interval_s,
            "decisions": self.decisions,
            "last_decision": last,
            "last_error": self.last_error,
        }
