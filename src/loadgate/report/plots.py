"""The report's pictures: matplotlib (Agg) figures returned as base64 PNG, so report.html has no
external file. Every figure has the same size and axes box (the page's full width at 1400 px,
legend on the right), and the same time axis: seconds since the run's first send."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from loadgate.judge import names  # noqa: E402
from loadgate.judge.inflight import inflight_mean  # noqa: E402
from loadgate.judge.latency import latency_percentiles, status_rates  # noqa: E402
from loadgate.report import markers  # noqa: E402

DPI = 100
SIZE = (13.6, 3.9)  # inches: 1360 x 390 px
BOX = {"left": 0.055, "right": 0.80, "bottom": 0.13, "top": 0.75}  # the axes, figure fraction
AXIS_PX = SIZE[0] * DPI * (BOX["right"] - BOX["left"])
FONT_PT = 10
LEGEND_PT = 10


def to_png(fig, tight: bool = True, dpi: float = 80.0) -> str:
    """The figure as base64 PNG, closed. tight: cropped to what is drawn (the regression pages);
    the report's plots keep their fixed canvas, so every time axis sits at the same pixels."""
    buf = io.BytesIO()
    # no Software metadata: nothing in the file points anywhere
    fig.savefig(
        buf,
        format="png",
        dpi=dpi,
        bbox_inches="tight" if tight else None,
        metadata={"Software": None},
    )
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def fixed_png(fig) -> str:
    """A report plot on its fixed canvas (SIZE at DPI: 1360 x 390 px)."""
    return to_png(fig, tight=False, dpi=DPI)


def frame(lay: markers.Layout, title: str, ylabel: str):
    """A figure with the phases and events of `lay` drawn; returns (fig, ax)."""
    with plt.rc_context({"font.size": FONT_PT}):
        fig = plt.figure(figsize=SIZE, dpi=DPI)
        ax = fig.add_axes(
            (BOX["left"], BOX["bottom"], BOX["right"] - BOX["left"], BOX["top"] - BOX["bottom"])
        )
    markers.draw(ax, lay)
    fig.text(BOX["left"], 0.965, title, ha="left", va="top", fontsize=FONT_PT + 1, color="#333")
    ax.set_xlabel("seconds since the first send", fontsize=FONT_PT)
    ax.set_ylabel(ylabel, fontsize=FONT_PT)
    ax.tick_params(labelsize=FONT_PT)
    ax.grid(alpha=0.3)
    return fig, ax


def legend(ax, handles=None, title: str | None = None) -> None:
    """Outside the axes, on the right; two columns when the entries would not fit in one."""
    h, lab = ax.get_legend_handles_labels() if handles is None else (handles, None)
    n = len(h)
    if not n:
        return
    kwargs = {"handles": h} if lab is None else {"handles": h, "labels": lab}
    ax.legend(
        **kwargs,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        borderaxespad=0,
        frameon=False,
        fontsize=LEGEND_PT if n <= 12 else LEGEND_PT - 1,
        ncol=1 if n <= 12 else 2,
        title=title,
        title_fontsize=LEGEND_PT - 1,
        alignment="left",
    )


def _empty(ax, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} in this run", transform=ax.transAxes, ha="center", color="#888")


def latency_plot(samples, lay, window) -> str:
    fig, ax = frame(lay, "Latency per class, from the intended send (p99 solid, p50 dashed)", "ms")
    p = latency_percentiles(samples, window=window, t0=lay.t0)
    if p.empty:
        _empty(ax, "successful calls")
        return fixed_png(fig)
    handles = []
    grid = lay.t0 + np.arange(0.0, lay.duration + window, window)
    for i, (cls, g) in enumerate(p.groupby("cls", sort=True)):
        c = f"C{i}"
        # a stretch without OK calls (e.g. between gates) is a gap in the line, not joined
        g = g.set_index(np.round((g["time"] - lay.t0) / window).astype(int))
        g = g.reindex(range(len(grid)))
        x = grid - lay.t0 + window / 2
        ax.plot(x, bridged(g["p99"]), color=c, linewidth=1.6)
        ax.plot(x, bridged(g["p50"]), color=c, linestyle="--", linewidth=1)
        handles.append(Line2D([], [], color=c, linewidth=2.5, label=str(cls)))
    handles += [
        Line2D([], [], color="#333", linewidth=1.6, label="p99"),
        Line2D([], [], color="#333", linewidth=1, linestyle="--", label="p50"),
    ]
    ax.set_yscale("log")
    legend(ax, handles)
    return fixed_png(fig)


def bridged(s: pd.Series, max_gap: int = 2) -> pd.Series:
    """Runs of at most `max_gap` missing windows interpolated (a class too sparse for every
    window); longer runs stay missing."""
    missing = s.isna()
    run = missing.groupby((~missing).cumsum()).transform("sum")
    return s.where(~(missing & (run <= max_gap)), s.interpolate(limit_area="inside"))


def inflight_plot(
    samples,
    lay,
    t1: float,
    bucket: float,
    pod_of: Mapping[str, str],
    killed: Mapping[str, float],
    prefix: str = "",
) -> str:
    """In flight per pod; `pod_of`: served_by -> the pod's name in the legend; `killed`: {name:
    epoch s} drawn as a cross on that pod's line at its kill."""
    fig, ax = frame(lay, "In flight per pod (from the samples, time-weighted)", "calls")
    served = samples[samples["served_by"].notna() & (samples["served_by"] != "")]
    if served.empty:
        _empty(ax, "calls with a known pod")
        return fixed_png(fig)
    per_addr = inflight_mean(served, bucket, lay.t0, t1)
    per_pod = per_addr.T.groupby(lambda a: pod_of.get(a, a)).sum().T  # one line per pod
    for i, pod in enumerate(per_pod.columns):
        color = f"C{i % 10}"
        x = per_pod.index - lay.t0
        label = pod
        if pod in killed:
            k = killed[pod] - lay.t0
            before = per_pod[pod][x <= k]  # its in-flight when it died
            y = float(before.iloc[-1]) if len(before) else 0.0
            ax.plot([k], [y], marker="X", markersize=13, color="#c0392b", zorder=5)
            ax.plot([k], [y], marker="X", markersize=7, color=color, zorder=6)
            label = f"{pod} \u2013 killed"
        ax.step(x, per_pod[pod], where="post", color=color, label=label, linewidth=1.2)
    legend(ax, title=f"{prefix}\u2026" if prefix else None)
    return fixed_png(fig)


def replicas_plot(frame_: pd.DataFrame, lay, max_replicas) -> str:
    fig, ax = frame(lay, "Replicas: demanded ceil(in flight / target) against ready", "replicas")
    x = frame_["time"] - lay.t0
    ax.step(x, frame_["demanded"], where="post", color="C1", label="demanded")
    if "spec" in frame_ and frame_["spec"].notna().any():
        ax.step(x, frame_["spec"], where="post", color="C0", linestyle="--", label="spec")
    if frame_["ready"].notna().any():
        ax.step(x, frame_["ready"], where="post", color="C2", linewidth=2, label="ready")
    else:
        ax.text(
            0.99,
            0.9,
            "no ready-replica series in the timeline",
            transform=ax.transAxes,
            ha="right",
            color="#888",
        )
    if max_replicas:
        ax.axhline(max_replicas, color="#555", linestyle="--", linewidth=1, label="maxReplicaCount")
    legend(ax)
    return fixed_png(fig)


def rejection_plot(samples, lay, window) -> str:
    """Shares of the calls sent in each window; `samples` without the cancellations at the
    stop (they are not errors)."""
    fig, ax = frame(
        lay, "Share of calls rejected (UNAVAILABLE / RESOURCE_EXHAUSTED) and other errors", "share"
    )
    r = status_rates(samples, window=window, t0=lay.t0)
    if r.empty:
        _empty(ax, "calls")
        return fixed_png(fig)
    x = r["time"] - lay.t0
    ax.step(x, r["rejected_share"], where="post", color="C3", label="rejected")
    ax.step(x, r["errors"] / r["sent"], where="post", color="C7", label="other errors")
    ax.set_ylim(-0.02, 1.02)
    legend(ax)
    return fixed_png(fig)


def lag_plot(samples, lay, window) -> str:
    fig, ax = frame(lay, "Generator lag (start - intended), p99 per window", "ms")
    s = samples[samples["status"] != names.DROPPED]
    if s.empty:
        _empty(ax, "calls")
        return fixed_png(fig)
    w = lay.t0 + np.floor((s["intended"] - lay.t0) / window) * window
    lag = ((s["start"] - s["intended"]) * 1000.0).groupby(w).quantile(0.99)
    ax.step(lag.index - lay.t0, lag.to_numpy(), where="post", color="C4", label="lag p99")
    legend(ax)
    return fixed_png(fig)
