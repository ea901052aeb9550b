"""report.html: one self-contained page (inline CSS, PNGs as data URIs, no script, no external
URL) that opens offline and can be attached to a CI run."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd

from loadgate import __version__
from loadgate.judge import names
from loadgate.judge.inflight import span
from loadgate.judge.latency import latency_ms
from loadgate.judge.scaling import replicas_frame
from loadgate.report import plots
from loadgate.report.summary import Summary

REPORT_FILE = "report.html"


def fmt(x) -> str:
    if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x))):
        return "–"
    if isinstance(x, int | np.integer):
        return str(x)
    return f"{x:.4g}" if abs(x) < 1e5 else f"{x:,.0f}"


def phases_from_samples(samples: pd.DataFrame) -> list[plots.Phase]:
    """(name, first intended send, last end) per phase, in time order."""
    if samples.empty or "phase" not in samples:
        return []
    g = samples[samples["phase"].fillna("") != ""].groupby("phase")
    b = pd.DataFrame({"a": g["intended"].min(), "b": g["intended"].max()}).sort_values("a")
    return [(str(n), float(r.a), float(r.b)) for n, r in b.iterrows()]


def events_from_timeline(
    timeline: pd.DataFrame, source: str = names.CHAOS_SOURCE
) -> list[plots.Event]:
    """Chaos events: (time, "metric pod/target") from the timeline rows of `source`."""
    rows = timeline[timeline["source"] == source].sort_values("time")
    out = []
    for t, metric, labels in zip(rows["time"], rows["metric"], rows["labels"], strict=True):
        lab = json.loads(labels) if labels else {}
        what = lab.get("pod") or lab.get("target") or lab.get("name") or ""
        out.append((float(t), f"{metric} {what}".strip()))
    return out


def class_table(samples: pd.DataFrame) -> list[dict]:
    s = samples[samples["status"] != names.DROPPED]
    if s.empty:
        return []
    ok = s["status"] == names.OK
    rej = s["status"].isin(names.REJECTED)
    lat = latency_ms(s).where(ok)
    frame = pd.DataFrame({"cls": s["cls"], "ok": ok, "rej": rej, "lat": lat})
    g = frame.groupby("cls", sort=True)
    t = pd.DataFrame(
        {
            "calls": g.size(),
            "ok": g["ok"].sum(),
            "rejected": g["rej"].sum(),
            "p50": g["lat"].quantile(0.5),
            "p99": g["lat"].quantile(0.99),
        }
    )
    t["errors"] = t["calls"] - t["ok"] - t["rejected"]
    counts = ["calls", "ok", "rejected", "errors"]
    t[counts] = t[counts].astype(int)
    return [{"cls": c, **rec} for c, rec in zip(t.index, t.to_dict("records"), strict=True)]


def _auto_bucket(duration: float, points: int = 120) -> float:
    """A bucket that gives about `points` points over the run, rounded to a readable size."""
    raw = max(duration / points, 0.1)
    for b in (0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300):
        if b >= raw:
            return float(b)
    return 600.0


def write_report(
    run_dir: str | Path,
    summary: Summary,
    samples: pd.DataFrame,
    timeline: pd.DataFrame,
    phases: list[plots.Phase] | None = None,
    events: list[plots.Event] | None = None,
    target_inflight: float | None = None,
    max_replicas: int | None = None,
    ready_metric: str = names.REPLICAS_READY_METRIC,
) -> Path:
    """Render run_dir/report.html. phases: (name, t0, t1) spans (default: from samples.phase);
    events: (time, label) markers (default: the timeline's chaos events)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    phases = phases_from_samples(samples) if phases is None else phases
    events = events_from_timeline(timeline) if events is None else events
    if samples.empty:
        t0, t1 = 0.0, 1.0
    else:
        t0 = float(samples["intended"].min())
        t1 = max(span(samples)[1], t0 + 1.0)
    window = _auto_bucket(t1 - t0, 60)
    bucket = _auto_bucket(t1 - t0, 200)
    frame = (
        replicas_frame(
            samples,
            timeline,
            bucket=bucket,
            target=float("nan") if target_inflight is None else target_inflight,
            ready_metric=ready_metric,
            t0=t0,
            t1=t1,
        )
        if not samples.empty
        else pd.DataFrame(columns=["time", "inflight", "demanded", "ready", "spec"])
    )
    figs = [
        ("latency", "Latency over time", plots.latency_plot(samples, t0, phases, events, window)),
        (
            "inflight",
            "Per-pod in-flight",
            plots.inflight_plot(samples, t0, t1, phases, events, bucket),
        ),
        (
            "replicas",
            "Replicas vs demand",
            plots.replicas_plot(frame, t0, phases, events, max_replicas),
        ),
        ("rejections", "Rejection rate", plots.rejection_plot(samples, t0, phases, events, window)),
        ("lag", "Generator lag", plots.lag_plot(samples, t0, phases, events, window)),
    ]
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("loadgate.report", "."),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    overall = summary.status
    html = env.get_template("report.html.j2").render(
        s=summary,
        g=summary.generator,
        fmt=fmt,
        overall=overall,
        overall_class={"PASS": "pass", "FAIL": "fail"}.get(overall, "invalid"),
        started=dt.datetime.fromtimestamp(summary.started, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        if summary.started
        else "",
        classes=class_table(samples),
        plots=[{"id": i, "title": t, "png": p} for i, t, p in figs],
        version=__version__,
    )
    out = run_dir / "report.html"
    out.write_text(html)
    return out
