"""The report's pictures: matplotlib (Agg) figures returned as base64 PNG, so report.html has no
external file. Time axes are seconds since the run's first send."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from loadgate.judge.inflight import inflight_mean  # noqa: E402
from loadgate.judge.latency import latency_percentiles, status_rates  # noqa: E402

DPI = 80
SIZE = (11, 3.4)
Phase = tuple[str, float, float]
Event = tuple[float, str]


def to_png(fig) -> str:
    buf = io.BytesIO()
    # no Software metadata: nothing in the file points anywhere
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _frame(t0: float, phases: list[Phase], events: list[Event], title: str, ylabel: str):
    fig, ax = plt.subplots(figsize=SIZE)
    colors = ["#e8eef7", "#f7efe3", "#e9f5e9", "#f5e6ef", "#eeeeee"]
    for i, (name, a, b) in enumerate(phases):
        ax.axvspan(a - t0, b - t0, color=colors[i % len(colors)], zorder=0)
        ax.text(
            (a + b) / 2 - t0,
            1.0,
            name,
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=8,
            color="#555",
        )
    for t, label in events:
        ax.axvline(t - t0, color="#c0392b", linestyle=":", linewidth=1.2, zorder=3)
        ax.text(
            t - t0,
            0.98,
            " " + label,
            transform=ax.get_xaxis_transform(),
            rotation=90,
            va="top",
            fontsize=7,
            color="#c0392b",
        )
    ax.set_title(title, loc="left", fontsize=10, pad=14)
    ax.set_xlabel("seconds since start")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return fig, ax


def _empty(ax, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} in this run", transform=ax.transAxes, ha="center", color="#888")


def latency_plot(samples, t0, phases, events, window) -> str:
    fig, ax = _frame(
        t0, phases, events, "Latency per class (p50 dashed, p99 solid, from intended send)", "ms"
    )
    p = latency_percentiles(samples, window=window, t0=t0)
    if p.empty:
        _empty(ax, "successful calls")
    for i, (cls, g) in enumerate(p.groupby("cls", sort=True)):
        c = f"C{i}"
        x = g["time"] - t0 + window / 2
        ax.plot(x, g["p99"], color=c, label=f"{cls} p99")
        ax.plot(x, g["p50"], color=c, linestyle="--", linewidth=1, label=f"{cls} p50")
    if not p.empty:
        ax.set_yscale("log")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return to_png(fig)


def inflight_plot(samples, t0, t1, phases, events, bucket) -> str:
    fig, ax = _frame(t0, phases, events, "In flight per pod (from samples, time-weighted)", "calls")
    served = samples[samples["served_by"].notna() & (samples["served_by"] != "")]
    if served.empty:
        _empty(ax, "calls with a known pod")
        return to_png(fig)
    per_pod = inflight_mean(served, bucket, t0, t1)
    for i, pod in enumerate(per_pod.columns):
        ax.step(
            per_pod.index - t0,
            per_pod[pod],
            where="post",
            color=f"C{i % 10}",
            label=pod,
            linewidth=1,
        )
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return to_png(fig)


def replicas_plot(frame: pd.DataFrame, t0, phases, events, max_replicas) -> str:
    fig, ax = _frame(
        t0, phases, events, "Replicas: demanded ceil(in-flight / target) vs ready", "replicas"
    )
    x = frame["time"] - t0
    ax.step(x, frame["demanded"], where="post", color="C1", label="demanded")
    if "spec" in frame and frame["spec"].notna().any():
        ax.step(x, frame["spec"], where="post", color="C0", linestyle="--", label="spec")
    if frame["ready"].notna().any():
        ax.step(x, frame["ready"], where="post", color="C2", linewidth=2, label="ready")
    else:
        ax.text(
            0.99,
            0.9,
            "no ready-replica series in the timeline",
            transform=ax.transAxes,
            ha="right",
            color="#888",
            fontsize=8,
        )
    if max_replicas:
        ax.axhline(max_replicas, color="#555", linestyle="--", linewidth=1, label="maxReplicaCount")
    ax.legend(fontsize=7, loc="upper left")
    return to_png(fig)


def rejection_plot(samples, t0, phases, events, window) -> str:
    fig, ax = _frame(
        t0,
        phases,
        events,
        "Share of calls rejected (UNAVAILABLE / RESOURCE_EXHAUSTED) and other errors",
        "share",
    )
    r = status_rates(samples, window=window, t0=t0)
    if r.empty:
        _empty(ax, "calls")
        return to_png(fig)
    x = r["time"] - t0
    ax.step(x, r["rejected_share"], where="post", color="C3", label="rejected")
    ax.step(x, r["errors"] / r["sent"], where="post", color="C7", label="other errors")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7, loc="upper left")
    return to_png(fig)


def lag_plot(samples, t0, phases, events, window) -> str:
    fig, ax = _frame(t0, phases, events, "Generator lag (start - intended), p99 per window", "ms")
    s = samples[samples["status"] != "DROPPED"]
    if s.empty:
        _empty(ax, "calls")
        return to_png(fig)
    w = t0 + np.floor((s["intended"] - t0) / window) * window
    lag = ((s["start"] - s["intended"]) * 1000.0).groupby(w).quantile(0.99)
    ax.step(lag.index - t0, lag.to_numpy(), where="post", color="C4")
    return to_png(fig)
