"""Can a run's figures be trusted? A verdict is only worth something when the load was what the
scenario asked for and the clocks behind each figure kept time.

Three questions, each with its own consequence (`loadgate.gate.run.GateRun.check`):
- **load**: was the scenario's load delivered (no dropped arrivals, every generator process to
  the end, sends no later than `load_lag_p99_max_s`)? If not, the stack was tested with another
  load: every figure of the gate is INVALID.
- **stack**: could the twin keep the time it simulates (its pods' event loops on time, the
  autoscaler polling at its interval, Prometheus scraping at its interval)? If not, the stack's
  own figures describe a starved machine: every figure is INVALID. A real cluster's timekeeping
  is its own; these checks apply where the series exist (the twin).
- **client**: was the client's own timing good (send lag within the scenario's
  `max_lag_p99_s`, answers taken off the wire within `drain_lag_p99_max_s` of the proxy's last
  byte)? If not, figures from the client's view (latency a user sees) are INVALID; figures from
  the stack's own records still stand.
Pure functions over the run's records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from loadgate.config import StrictModel
from loadgate.judge.timeline import series

LOOP_LAG_METRIC = "loadgate_event_loop_lag_seconds"
AUTOSCALER_POLL_METRIC = "autoscaler_metric"  # one row per autoscaler poll
SCRAPE_INTERVAL_METRIC = "scrape_interval_p99_s"


class TrustLimits(StrictModel):
    """How far timing may drift before a figure is not trusted (loadgate.yaml `trust:`)."""

    load_lag_p99_max_s: float = 1.0  # sends this late reshape the load itself
    drain_lag_p99_max_s: float = 1.0  # client end - proxy end
    pod_loop_lag_p99_max_s: float = 0.25  # a pod's event loop waking late stretches its clock
    autoscaler_stretch_max: float = 1.5  # achieved poll interval p99 / configured interval
    scrape_interval_p99_max_s: float = 2.0  # Prometheus is configured at 1 s


@dataclass(frozen=True)
class Trust:
    load: list[str] = field(default_factory=list)
    stack: list[str] = field(default_factory=list)
    client: list[str] = field(default_factory=list)
    figures: dict[str, float | None] = field(default_factory=dict)

    def reasons(self, source: str, timed: bool = True) -> list[str]:
        """Why a figure of this source ("stack" or "client") cannot be trusted ([] = it can);
        the client's timing matters only to a client figure it shapes (`timed`)."""
        return self.load + self.stack + (self.client if source == "client" and timed else [])

    @property
    def whole(self) -> list[str]:
        return self.load + self.stack


def _q(x: pd.Series | np.ndarray, q: float) -> float | None:
    x = pd.Series(x).dropna()
    return float(x.quantile(q)) if len(x) else None


def load_reasons(generator: dict, limits: TrustLimits) -> list[str]:
    """The traffic summary's generator health, minus what only concerns the client's timing."""
    out = [r for r in generator.get("invalid_reasons") or [] if not r.startswith("send lag")]
    lag = generator.get("lag_p99_s")
    if lag is not None and lag > limits.load_lag_p99_max_s:
        out.append(
            f"send lag p99 {lag * 1e3:.0f} ms > {limits.load_lag_p99_max_s * 1e3:.0f} ms: "
            "the load itself arrived reshaped"
        )
    return out


def client_reasons(
    generator: dict, drain_lag_s: pd.Series, limits: TrustLimits
) -> tuple[list[str], dict[str, float | None]]:
    """The client's timing: its send lag against the scenario's `max_lag_p99_s` (the traffic
    summary says), and how late it took answers off the wire."""
    out = [r for r in generator.get("invalid_reasons") or [] if r.startswith("send lag")]
    drain = _q(drain_lag_s, 0.99)
    if drain is not None and drain > limits.drain_lag_p99_max_s:
        out.append(
            f"the client took answers off the wire late (end - proxy end p99 "
            f"{drain * 1e3:.0f} ms > {limits.drain_lag_p99_max_s * 1e3:.0f} ms)"
        )
    return out, {"drain_lag_p99_s": drain, "send_lag_p99_s": generator.get("lag_p99_s")}


def stack_reasons(
    timeline: pd.DataFrame,
    t0: float,
    t1: float,
    autoscaler_poll_s: float | None,
    limits: TrustLimits,
) -> tuple[list[str], dict[str, float | None]]:
    """Twin timekeeping over [t0, t1] from the series the run recorded (absent series: no check)."""
    out: list[str] = []
    win = timeline[(timeline["time"] >= t0) & (timeline["time"] <= t1)]
    loop = series(win, LOOP_LAG_METRIC)["value"] if len(win) else pd.Series(dtype=float)
    loop_p99 = _q(loop, 0.99)
    if loop_p99 is not None and loop_p99 > limits.pod_loop_lag_p99_max_s:
        out.append(
            f"the pods could not keep their simulated time (event loop lag p99 "
            f"{loop_p99 * 1e3:.0f} ms > {limits.pod_loop_lag_p99_max_s * 1e3:.0f} ms)"
        )
    stretch = None
    if autoscaler_poll_s:
        polls = np.sort(series(win, AUTOSCALER_POLL_METRIC)["time"].to_numpy(dtype=float))
        if len(polls) >= 3:
            stretch = float(np.quantile(np.diff(polls), 0.99) / autoscaler_poll_s)
            if stretch > limits.autoscaler_stretch_max:
                out.append(
                    f"the autoscaler polled late (interval p99 {stretch:.2f}x its "
                    f"{autoscaler_poll_s:g} s, limit {limits.autoscaler_stretch_max:g}x)"
                )
    scrape = series(timeline, SCRAPE_INTERVAL_METRIC)["value"]
    scrape_p99 = float(scrape.iloc[-1]) if len(scrape) and not math.isnan(scrape.iloc[-1]) else None
    if scrape_p99 is not None and scrape_p99 > limits.scrape_interval_p99_max_s:
        out.append(
            f"Prometheus scraped late (interval p99 {scrape_p99:.2f} s > "
            f"{limits.scrape_interval_p99_max_s:g} s)"
        )
    figures = {
        "pod_loop_lag_p99_s": loop_p99,
        "autoscaler_stretch_p99": stretch,
        "scrape_interval_p99_s": scrape_p99,
    }
    return out, figures


def assess(
    generator: dict,
    drain_lag_s: pd.Series,
    timeline: pd.DataFrame,
    window: tuple[float, float],
    autoscaler_poll_s: float | None,
    limits: TrustLimits,
) -> Trust:
    client, cf = client_reasons(generator, drain_lag_s, limits)
    stack, sf = stack_reasons(timeline, window[0], window[1], autoscaler_poll_s, limits)
    return Trust(
        load=load_reasons(generator, limits),
        stack=stack,
        client=client,
        figures={**cf, **sf},
    )
