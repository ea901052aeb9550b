"""compare.html and capacity.html: self-contained pages (inline CSS, PNGs as data URIs, no
script, no external URL) like report.html, drawn with the report's matplotlib helpers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import jinja2
import numpy as np

from loadgate import __version__
from loadgate.regression import capacity
from loadgate.regression import figures as F
from loadgate.regression.compare import Comparison
from loadgate.regression.result import CapacityResult
from loadgate.regression.rundir import Run
from loadgate.regression.text import VERDICT_MARK, num
from loadgate.report.plots import plt, to_png

SIDES = (("baseline", "C0"), ("candidate", "C3"))
CDF_FIGURES = ((F.LATENCY, "latency"), (F.TTFT, "time to first token"), (F.ITL, "inter-token"))


def _pooled(runs: list[Run], cls: str, column: str) -> np.ndarray:
    vals = [
        r.calls.loc[r.calls[F.CLS] == cls, column].to_numpy(float)
        for r in runs
        if r.calls is not None
    ]
    v = np.concatenate(vals) if vals else np.empty(0)
    return np.sort(v[np.isfinite(v)])


def cdf_plots(base: list[Run], cand: list[Run]) -> list[dict]:
    """Per class, the CDF of latency / TTFT / ITL over every call of each side, overlaid."""
    classes = sorted(
        {c for r in base + cand if r.calls is not None for c in r.calls[F.CLS].unique()}
    )
    out = []
    for cls in classes:
        present = [
            (col, title) for col, title in CDF_FIGURES if len(_pooled(base + cand, cls, col))
        ]
        if not present:
            continue
        fig, axes = plt.subplots(1, len(present), figsize=(3.8 * len(present), 3.0), squeeze=False)
        for ax, (col, title) in zip(axes[0], present, strict=True):
            for (side, color), runs in zip(SIDES, (base, cand), strict=True):
                v = _pooled(runs, cls, col)
                if len(v):
                    ax.step(
                        v,
                        np.arange(1, len(v) + 1) / len(v),
                        where="post",
                        color=color,
                        label=f"{side} ({len(runs)} run{'s' if len(runs) > 1 else ''})",
                    )
            ax.set_xscale("log")
            ax.set_title(f"{cls}: {title}", fontsize=9, loc="left")
            ax.set_xlabel("ms")
            ax.grid(alpha=0.3)
            ax.axhline(0.99, color="#888", linewidth=0.8, linestyle=":")
        axes[0][0].set_ylabel("share of calls")
        axes[0][0].legend(fontsize=7, loc="lower right")
        out.append({"title": f"{cls}: distributions", "png": to_png(fig)})
    return out


def _shade(ax, r: CapacityResult, color: str) -> None:
    if r.lo is not None or r.hi is not None:
        lo = r.lo if r.lo is not None else 0.0
        hi = r.hi if r.hi is not None else max(p.load for p in r.probes)
        ax.axvspan(lo, hi, color=color, alpha=0.12, zorder=0)
    if r.capacity is not None:
        ax.axvline(r.capacity, color=color, linestyle="--", linewidth=1)


def _fit_plot(results: list[tuple[str, str, CapacityResult]]) -> str | None:
    """Each binding SLO's share of calls over its bound against load (x: a probe stopped with a
    growing backlog, counted as every call missing), the non-decreasing fit through them and
    the share allowed: the capacity is where the lowest fit crosses its line."""
    fitted = [(color, r, capacity.shares(r.probes)) for _, color, r in results]
    curves = sorted({(sh.cls, sh.slo) for _, _, shs in fitted for sh in shs})
    if not curves:
        return None
    cols = min(3, len(curves))
    rows = -(-len(curves) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(11, 2.6 * rows), squeeze=False)
    for ax in axes.flat[len(curves) :]:
        ax.set_visible(False)
    labels = [label for label, _, _ in results]
    for ax, (cls, slo) in zip(axes.flat, curves, strict=False):
        for label, (color, r, shs) in zip(labels, fitted, strict=True):
            for sh in (sh for sh in shs if (sh.cls, sh.slo) == (cls, slo)):
                share = sh.observed
                ax.plot(sh.loads[~sh.backlog], share[~sh.backlog], "o", color=color, ms=3)
                ax.plot(sh.loads[sh.backlog], share[sh.backlog], "x", color=color)
                ax.plot(*sh.fit(share), "-", color=color, label=label)
                ax.axhline(sh.allowed, color="#c0392b", linestyle="--", linewidth=1)
                _shade(ax, r, color)
        ax.set_yscale("symlog", linthresh=0.01)
        ax.set_ylim(0, 1.2)
        ax.set_title(f"{cls} {slo}: share over the bound", fontsize=8, loc="left")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return to_png(fig)


def capacity_plots(results: list[tuple[str, str, CapacityResult]]) -> list[dict]:
    """Goodput and the worst SLO figure (as a share of its bound) against load, per search; the
    shaded span is the search's interval, the dashed line its capacity."""
    if not results:
        return []
    fig, (g, s) = plt.subplots(1, 2, figsize=(11, 3.4))
    for label, color, r in results:
        probes = sorted((p for p in r.probes if p.verdict != "invalid"), key=lambda p: p.load)
        x = [p.load for p in probes]
        g.plot(x, [p.goodput_per_s or 0.0 for p in probes], "o-", color=color, label=label)
        worst = [p.worst.value / p.worst.bound if p.worst else np.nan for p in probes]
        s.plot(x, worst, "o-", color=color, label=label)
        for ax in (g, s):
            _shade(ax, r, color)
        unit = r.unit
    g.set_title("goodput (calls within every SLO per second)", fontsize=9, loc="left")
    s.set_title("worst SLO figure / its bound (above 1: missed)", fontsize=9, loc="left")
    s.axhline(1.0, color="#c0392b", linewidth=1)
    s.set_yscale("log")
    for ax in (g, s):
        ax.set_xlabel(f"load ({unit})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    out = [{"title": "Capacity curve", "png": to_png(fig)}]
    fits = _fit_plot(results)
    if fits is not None:
        out.append({"title": "Share of calls over each SLO's bound, fitted", "png": fits})
    checks = sorted(
        {(c.cls, c.figure, c.bound) for _, _, r in results for p in r.probes for c in p.checks}
    )
    if checks:
        cols = min(3, len(checks))
        rows = -(-len(checks) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(11, 2.6 * rows), squeeze=False)
        for ax in axes.flat[len(checks) :]:
            ax.set_visible(False)
        for ax, (cls, figure, bound) in zip(axes.flat, checks, strict=False):
            for label, color, r in results:
                pts = sorted(
                    (
                        (p.load, c)
                        for p in r.probes
                        for c in p.checks
                        if (c.cls, c.figure) == (cls, figure) and c.value is not None
                    ),
                    key=lambda pt: pt[0],  # a load probed twice: both points, in probe order
                )
                if not pts:
                    continue
                x = np.array([p[0] for p in pts])
                v = np.array([p[1].value for p in pts])
                lo = np.array([p[1].lo if p[1].lo is not None else p[1].value for p in pts])
                hi = np.array([p[1].hi if p[1].hi is not None else p[1].value for p in pts])
                ax.errorbar(
                    x,
                    v,
                    yerr=[np.maximum(v - lo, 0), np.maximum(hi - v, 0)],
                    fmt="o-",
                    color=color,
                    capsize=2,
                    label=label,
                    markersize=3,
                )
            ax.axhline(bound, color="#c0392b", linestyle="--", linewidth=1)
            ax.set_title(f"{cls} {figure} (bound {bound:g})", fontsize=8, loc="left")
            if F.FIGURES[figure].relative:  # ms: log; a share (error rate) stays linear
                ax.set_yscale("log")
            ax.grid(alpha=0.3)
        fig.tight_layout()
        axes[0][0].legend(fontsize=7)
        out.append({"title": "SLO figures with their 95 % intervals", "png": to_png(fig)})
    return out


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("loadgate.regression", "."),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def write_comparison(path: Path, c: Comparison, base: list[Run], cand: list[Run]) -> Path:
    caps = [
        (side, color, r.capacity)
        for (side, color), runs in zip(SIDES, (base, cand), strict=True)
        for r in runs
        if r.capacity is not None
    ]
    html = (
        _env()
        .get_template("regression.html.j2")
        .render(
            title="loadgate compare",
            comparison=c,
            capacity=None,
            plots=cdf_plots(base, cand) + capacity_plots(caps),
            num=num,
            mark=VERDICT_MARK,
            generated=_now(),
            version=__version__,
        )
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html)
    return path


def write_capacity(path: Path, r: CapacityResult) -> Path:
    html = (
        _env()
        .get_template("regression.html.j2")
        .render(
            title=f"loadgate capacity: {r.scenario}",
            comparison=None,
            capacity=r,
            plots=capacity_plots([(r.scenario, "C0", r)]),
            num=num,
            mark=VERDICT_MARK,
            generated=_now(),
            version=__version__,
        )
    )
    path.write_text(html)
    return path
