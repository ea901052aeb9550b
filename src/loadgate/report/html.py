"""report.html: one self-contained page (inline CSS, PNGs as data URIs, no script, no external
URL) that opens offline and can be attached to a CI run.

Read top down in ten seconds: the badge (PASS / FAIL / INVALID / INTERRUPTED) and why, the
verdicts with FAIL first, the traffic per class (cancellations at the stop apart from errors),
the distinct error messages; then the plots, with the events numbered and listed below the
first one and the pods named.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd

from loadgate import __version__
from loadgate.judge import names
from loadgate.judge.inflight import span
from loadgate.judge.outcomes import stop_cancelled
from loadgate.judge.scaling import replicas_frame
from loadgate.report import classes, markers, plots, pods, status
from loadgate.report.events import (
    Marker,
    Phase,
    from_pairs,
    kills_by_pod,
    phases_from_samples,
    timeline_markers,
)
from loadgate.report.summary import Summary

REPORT_FILE = "report.html"
__all__ = ["REPORT_FILE", "phases_from_samples", "write_report"]


def fmt(x) -> str:
    if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x))):
        return "–"
    if isinstance(x, int | np.integer):
        return str(x)
    return f"{x:.4g}" if abs(x) < 1e5 else f"{x:,.0f}"


def pct(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:.1f} %"


def clock(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%H:%M:%S.%f")[:-5]


def _auto_bucket(duration: float, points: int = 120) -> float:
    """A bucket that gives about `points` points over the run, rounded to a readable size."""
    raw = max(duration / points, 0.1)
    for b in (0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300):
        if b >= raw:
            return float(b)
    return 600.0


def event_rows(marks: list[Marker], t0: float) -> list[dict]:
    """The list below the first plot: one row per marker, numbered as on the plots."""
    return [
        {
            "n": i + 1,
            "kind": m.kind,
            "t": m.time - t0,
            "end": None if m.end is None else m.end - t0,
            "clock": clock(m.time),
            "label": m.label,
            "pods": list(m.pods),
            "detail": m.detail,
        }
        for i, m in enumerate(marks)
    ]


def write_report(
    run_dir: str | Path,
    summary: Summary,
    samples: pd.DataFrame,
    timeline: pd.DataFrame,
    phases: list[Phase] | None = None,
    events: list[tuple[float, str]] | list[Marker] | None = None,
    target_inflight: float | None = None,
    max_replicas: int | None = None,
    ready_metric: str = names.REPLICAS_READY_METRIC,
    *,
    interrupted: str | None = None,
) -> Path:
    """Render run_dir/report.html. phases: (name, t0, t1) spans (default: from samples.phase);
    events: markers or (time, label) pairs (default: from the timeline); interrupted: why the
    run did not reach its end ("" it did; default: read from the run directory's files)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    interrupted = status.interruption(run_dir) if interrupted is None else interrupted
    if samples.empty:
        t0, t1 = summary.started or 0.0, (summary.started or 0.0) + 1.0
    else:
        t0 = float(samples["intended"].min())
        t1 = max(span(samples)[1], t0 + 1.0)
    phases = phases_from_samples(samples) if phases is None else phases
    marks = _markers(events, timeline, t0, t1)
    at_stop = stop_cancelled(samples)
    by_address = pods.pod_names(timeline)
    pod_of = {a: n for a, n in by_address.items() if ":" in a}
    prefix, short = pods.short_names(pod_of.values())
    kills = kills_by_pod(marks)
    lay = markers.layout(t0, t1, phases, marks, plots.AXIS_PX, plots.DPI)
    window = _auto_bucket(t1 - t0, 60)
    bucket = _auto_bucket(t1 - t0, 200)
    figs = [
        ("latency", "Latency over time", plots.latency_plot(samples, lay, window)),
        (
            "inflight",
            "In flight per pod",
            plots.inflight_plot(
                samples,
                lay,
                t1,
                bucket,
                {a: short.get(n, n) for a, n in pod_of.items()},
                {short.get(p, p): t for p, (t, _) in kills.items()},
                prefix,
            ),
        ),
        (
            "replicas",
            "Replicas against demand",
            plots.replicas_plot(
                _replicas(samples, timeline, bucket, target_inflight, ready_metric, t0, t1),
                lay,
                max_replicas,
            ),
        ),
        (
            "rejections",
            "Rejections and errors",
            plots.rejection_plot(samples[~at_stop], lay, window),
        ),
        ("lag", "Generator lag", plots.lag_plot(samples, lay, window)),
    ]
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("loadgate.report", "."),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    html = env.get_template("report.html.j2").render(
        s=summary,
        g=summary.generator,
        fmt=fmt,
        pct=pct,
        badge=status.badge(summary, interrupted),
        headline=status.headline(summary.gates),
        interrupted=interrupted,
        verdicts=status.verdict_rows(summary.gates),
        started=dt.datetime.fromtimestamp(summary.started, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        if summary.started
        else "",
        duration=(summary.finished - summary.started)
        if summary.started and summary.finished
        else None,
        classes=classes.class_table(samples),
        errors=classes.error_table(samples),
        at_stop=int(at_stop.sum()),
        events=event_rows(marks, t0),
        phases=[(n, a - t0, b - t0) for n, a, b in phases],
        pods=pods.pods_table(samples, timeline, t0, kills, at_stop),
        plots=[{"id": i, "title": t, "png": p} for i, t, p in figs],
        version=__version__,
    )
    out = run_dir / REPORT_FILE
    out.write_text(html)
    return out


def _markers(given, timeline: pd.DataFrame, t0: float, t1: float) -> list[Marker]:
    if given is None:
        return timeline_markers(timeline, t0, t1)
    marks = [m if isinstance(m, Marker) else from_pairs([m])[0] for m in given]
    return sorted((m for m in marks if t0 <= m.time <= t1), key=lambda m: m.time)


def _replicas(samples, timeline, bucket, target, ready_metric, t0, t1) -> pd.DataFrame:
    if samples.empty:
        return pd.DataFrame(columns=["time", "inflight", "demanded", "ready", "spec"])
    return replicas_frame(
        samples,
        timeline,
        bucket=bucket,
        target=float("nan") if target is None else target,
        ready_metric=ready_metric,
        t0=t0,
        t1=t1,
    )
