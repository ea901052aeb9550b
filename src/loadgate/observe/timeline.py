"""One timeline collector for every run (a gate, a gameday), on the twin and on Kubernetes alike.

    collector = TimelineCollector(platform, prometheus_url).start()
    ...  # the load
    frame = collector.collect(t0, t1)   # TIMELINE contract DataFrame

While the load runs it samples the platform's pods (readiness) and replicas every `interval_s`
(a Kubernetes API keeps no history of them); at the end it adds the platform's own record
(its events, or the twin's log of every readiness change and autoscaler decision) and the
Prometheus series of the window.
"""

from __future__ import annotations

import logging

import pandas as pd

from loadgate.errors import UserError
from loadgate.observe.sampler import Sampler
from loadgate.platform.base import Platform, TimelineRow
from loadgate.schema import TIMELINE_COLUMNS, empty_timeline, encode_labels

log = logging.getLogger(__name__)

# Prometheus series each run's timeline gets: (query, metric name in the timeline). Pod queues
# are summed over models per pod, as the readiness rule counts them.
PROM_SERIES: tuple[tuple[str, str], ...] = (
    ("sum by (pod) (nv_inference_pending_request_count)", "nv_inference_pending_request_count"),
    ("envoy_cluster_upstream_rq_active", "envoy_cluster_upstream_rq_active"),
    ("envoy_cluster_upstream_rq_total", "envoy_cluster_upstream_rq_total"),
    # Breaker overflow of max_requests: active_overflow on Envoy >= 1.28 (pending_overflow
    # before); both are kept so either Envoy's rejections show.
    ("envoy_cluster_upstream_rq_active_overflow", "envoy_cluster_upstream_rq_active_overflow"),
    ("envoy_cluster_upstream_rq_pending_overflow", "envoy_cluster_upstream_rq_pending_overflow"),
    # how late each pod's event loop ran (the twin's pods; absent for other servers)
    ("max by (pod) (loadgate_event_loop_lag_seconds)", "loadgate_event_loop_lag_seconds"),
)
SCRAPE_INTERVAL_METRIC = "scrape_interval_p99_s"  # Prometheus' achieved scrape interval


def rows_frame(rows: list[TimelineRow]) -> pd.DataFrame:
    """Timeline rows (labels as dicts or encoded) -> a TIMELINE frame, by time."""
    if not rows:
        return empty_timeline()
    df = pd.DataFrame(rows)
    df["labels"] = [x if isinstance(x, str) else encode_labels(x) for x in df["labels"]]
    df["time"] = df["time"].astype(float)
    df["value"] = pd.to_numeric(df["value"], errors="coerce").astype(float)
    return df[TIMELINE_COLUMNS].sort_values("time", kind="stable").reset_index(drop=True)


class TimelineCollector:
    def __init__(
        self,
        platform: Platform,
        prometheus_url: str | None,
        interval_s: float = 0.5,
        max_s: float = 3600.0,
        series: tuple[tuple[str, str], ...] = PROM_SERIES,
    ) -> None:
        self.platform = platform
        self.prometheus_url = prometheus_url
        self.series = series
        self.sampler = Sampler(platform.snapshot, interval_s=interval_s, max_s=max_s)
        self.notes: list[str] = []  # what could not be collected, one line each

    def start(self) -> TimelineCollector:
        self.sampler.start()
        return self

    def stop(self) -> list[TimelineRow]:
        rows = self.sampler.stop()
        if self.sampler.error:
            self.notes.append(f"platform sampling: {self.sampler.error}")
        return rows

    def collect(self, t0: float, t1: float, since: float = 0.0) -> pd.DataFrame:
        """Stop sampling; the sampled rows, the platform's own rows since `since` (a state set
        before the run, like a pod ready since boot, is only recorded when it changed) and the
        Prometheus series over [t0, t1]."""
        rows = self.stop()
        try:
            rows += self.platform.timeline(since)
        except UserError as e:  # the stack may be gone: what was sampled still stands
            self.notes.append(f"platform timeline: {e}")
        frames = [rows_frame(rows)]
        if self.prometheus_url:
            from loadgate.observe.prometheus import Prometheus

            prom = Prometheus(self.prometheus_url)
            for query, metric in self.series:
                try:
                    frames.append(prom.range(query, t0, t1, step=0.5).assign(metric=metric))
                except UserError as e:
                    self.notes.append(f"no {metric}: {e}")
            p99 = prom.scrape_interval_p99_s()
            if p99 is not None:
                row = {"time": t1, "source": "prometheus", "metric": SCRAPE_INTERVAL_METRIC}
                frames.append(rows_frame([{**row, "labels": {"interval": "1s"}, "value": p99}]))
        frames = [f for f in frames if len(f)]
        if not frames:
            return empty_timeline()
        out = pd.concat(frames, ignore_index=True)
        out = out[out["time"] <= t1]
        return out.sort_values("time", kind="stable").reset_index(drop=True)
