"""Baseline vs candidate: one row per (scope, figure) with each side's estimate and interval,
the change, a p-value and a verdict.

- Several runs per side: each side's median over runs with a distribution-free 95 % interval,
  Mann-Whitney U across runs (benchstat's method). Too few runs to ever reach alpha (fewer than
  4 + 4) is "not enough samples".
- One traffic run per side: intervals over requests from a moving-block bootstrap of 1 s
  buckets (stats.py); refused ("not enough samples") for a figure with too few calls or whose
  per-second series is autocorrelated. Run-to-run noise is not in these intervals.
- One capacity run per side: the searches' intervals; a change is significant when they do not
  overlap.
A change counts only when significant (p < alpha) AND beyond the figure's floor; its direction
(figures.FigureSpec.better) makes it regressed or improved.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from loadgate.regression import figures as F
from loadgate.regression import stats
from loadgate.regression.result import CapacityResult
from loadgate.regression.rundir import Run

Verdict = Literal["regressed", "improved", "no change", "not enough samples", "not comparable"]
Method = Literal["runs", "requests", "search"]
MIN_BUCKETS = 10  # one run per side: at least 10 one-second buckets


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Side(_Model):
    runs: int
    value: float | None  # median over runs, or the one run's value
    lo: float | None
    hi: float | None
    confidence: float | None  # achieved by the interval (order statistics can fall short)


class Estimate(_Model):
    """What one method says about one figure."""

    baseline: Side | None
    candidate: Side | None
    change: float | None  # relative: fraction of the baseline; else a difference
    change_lo: float | None = None  # its interval (one run a side)
    change_hi: float | None = None
    p: float | None = None
    verdict: Verdict
    note: str = ""


class Row(Estimate):
    """One figure of the comparison: which, how it was judged, and the estimate."""

    scope: str  # class name, "all", "gate:<gate>", or "capacity"
    figure: str
    unit: str
    better: F.Better
    relative: bool
    gating: bool
    method: Method
    floor: float

    @property
    def key(self) -> str:
        return f"{self.scope}/{self.figure}"


class Comparison(_Model):
    baseline: list[str]
    candidate: list[str]
    baseline_identity: str
    candidate_identity: str
    comparable: bool
    reason: str = ""
    alpha: float
    confidence: float
    rows: list[Row]
    warnings: list[str] = []

    @property
    def regressed_gating(self) -> list[Row]:
        return [r for r in self.rows if r.gating and r.verdict == "regressed"]


@dataclass(frozen=True)
class Options:
    floor: float = 0.05  # relative figures: changes below 5 % are ignored (pyperf's min-speed)
    share_floor: float = 0.005  # shares (error rate): below 0.5 percentage points
    alpha: float = stats.ALPHA
    gating: tuple[str, ...] = ()  # globs over "scope/figure"; () = each figure's default
    seed: int = 0  # the bootstrap's generator: the same runs give the same output


@dataclass(frozen=True)
class _Fig:
    scope: str
    spec: F.FigureSpec


def _gating(key: str, spec: F.FigureSpec, opts: Options) -> bool:
    if not opts.gating:
        return spec.gating
    return any(fnmatch.fnmatchcase(key, g) for g in opts.gating)


def _figures(base: list[Run], cand: list[Run]) -> list[_Fig]:
    """Every figure either side has, in a stable order: traffic per class, gates, capacity."""
    seen: dict[tuple[str, str], _Fig] = {}
    for run in base + cand:
        if run.scenario is not None and run.kind == "traffic":
            for scope, name in F.figures_of(run.scenario):
                seen.setdefault((scope, name), _Fig(scope, F.FIGURES[name]))
        for v in run.gates:
            better = F.better_of(v.comparison)
            if better is not None:
                spec = F.FigureSpec(v.figure, v.unit, better)
                seen.setdefault((f"gate:{v.gate}", v.figure), _Fig(f"gate:{v.gate}", spec))
        if run.capacity is not None:
            spec = F.FigureSpec(F.CAPACITY.name, run.capacity.unit, "higher", gating=True)
            seen.setdefault(("capacity", spec.name), _Fig("capacity", spec))
    return list(seen.values())


def _run_value(run: Run, fig: _Fig) -> float | None:
    if fig.scope == "capacity":
        return run.capacity.capacity if run.capacity is not None else None
    if fig.scope.startswith("gate:"):
        gate = fig.scope.removeprefix("gate:")
        hit = [v.value for v in run.gates if v.gate == gate and v.figure == fig.spec.name]
        return hit[0] if hit else None
    if run.calls is None or run.window is None or fig.spec.stat is None:
        return None
    v = F.value(F.scope_calls(run.calls, fig.scope), run.window, fig.spec.stat)
    return None if math.isnan(v) else v


def _change(a: float, b: float, relative: bool) -> float | None:
    if relative:
        return b / a - 1.0 if a else None
    return b - a


def _verdict(change: float | None, significant: bool, better: F.Better, floor: float) -> Verdict:
    if change is None or not significant or abs(change) <= floor:
        return "no change"
    worse = change > 0 if better == "lower" else change < 0
    return "regressed" if worse else "improved"


def across_runs(spec: F.FigureSpec, a: list[float], b: list[float], opts: Options) -> Estimate:
    """One value per run on each side: medians with order-statistic intervals, Mann-Whitney U."""
    sides = []
    for vals in (a, b):
        med, ci = stats.median_ci(np.asarray(vals))
        sides.append(Side(runs=len(vals), value=med, lo=ci.lo, hi=ci.hi, confidence=ci.confidence))
    change = _change(sides[0].value, sides[1].value, spec.relative)
    if stats.min_mann_whitney_p(len(a), len(b)) >= opts.alpha:
        return Estimate(
            baseline=sides[0],
            candidate=sides[1],
            change=change,
            verdict="not enough samples",
            note=f"{len(a)}+{len(b)} runs cannot reach p < {opts.alpha:g} "
            "(Mann-Whitney needs >= 4 per side; use 10)",
        )
    p = stats.mann_whitney_p(np.asarray(a), np.asarray(b))
    return Estimate(
        baseline=sides[0],
        candidate=sides[1],
        change=change,
        p=p,
        verdict=_verdict(change, p < opts.alpha, spec.better, _floor(spec, opts)),
    )


def within_run(
    spec: F.FigureSpec,
    a: tuple[pd.DataFrame, F.Window],
    b: tuple[pd.DataFrame, F.Window],
    opts: Options,
) -> Estimate:
    """One run per side (calls of the figure's scope, window): block-bootstrap intervals over
    requests, refused when a run is too short, too sparse or correlated across seconds."""
    stat = spec.stat
    rng = np.random.default_rng(opts.seed)
    ra, rb = F.replicates([a, b], stat, rng)
    sides = []
    for r in (ra, rb):
        ci = stats.replicate_ci(r, spec.relative)
        value = None if math.isnan(r.value) else r.value
        sides.append(Side(runs=1, value=value, lo=ci.lo, hi=ci.hi, confidence=ci.confidence))
    if sides[0].value is None or sides[1].value is None:
        return Estimate(
            baseline=sides[0],
            candidate=sides[1],
            change=None,
            verdict="not comparable",
            note="not measured on one side",
        )
    base = dict(
        baseline=sides[0],
        candidate=sides[1],
        change=_change(sides[0].value, sides[1].value, spec.relative),
    )
    need = F.min_count(stat)
    few = [n for n in (F.counted(a[0], stat), F.counted(b[0], stat)) if n < need]
    if few:
        note = f"{min(few)} calls; one run needs >= {need} for this figure"
        return Estimate(**base, verdict="not enough samples", note=note)
    if min(ra.n_buckets, rb.n_buckets) < MIN_BUCKETS:
        note = f"runs shorter than {MIN_BUCKETS} s"
        return Estimate(**base, verdict="not enough samples", note=note)
    if stats.correlated(ra.series) or stats.correlated(rb.series):
        note = "noise correlated from second to second: one run cannot bound it, use runs"
        return Estimate(**base, verdict="not enough samples", note=note)
    ch = stats.bootstrap_change(ra, rb, spec.relative)
    verdict = _verdict(base["change"], ch.p < opts.alpha, spec.better, _floor(spec, opts))
    return Estimate(**base, change_lo=ch.ci.lo, change_hi=ch.ci.hi, p=ch.p, verdict=verdict)


def search_intervals(
    spec: F.FigureSpec, a: CapacityResult, b: CapacityResult, opts: Options
) -> Estimate:
    """One capacity search per side: significant when the searches' 95 % intervals do not
    overlap."""
    sa, sb = (Side(runs=1, value=r.capacity, lo=r.lo, hi=r.hi, confidence=None) for r in (a, b))
    change = _change(sa.value, sb.value, True) if sa.value and sb.value is not None else None
    below = sb.hi is not None and sa.lo is not None and sb.hi <= sa.lo
    above = sa.hi is not None and sb.lo is not None and sb.lo >= sa.hi
    return Estimate(
        baseline=sa,
        candidate=sb,
        change=change,
        verdict=_verdict(change, below or above, spec.better, _floor(spec, opts)),
        note="one search per side: significant when the intervals do not overlap",
    )


def _floor(spec: F.FigureSpec, opts: Options) -> float:
    return opts.floor if spec.relative else opts.share_floor


def compare_runs(base: list[Run], cand: list[Run], opts: Options | None = None) -> Comparison:
    opts = opts or Options()
    ids_a, ids_b = _identities(base), _identities(cand)
    comparable = ids_a == ids_b
    rows = []
    for fig in _figures(base, cand):
        rows.append(_row(fig, base, cand, opts, comparable))
    return Comparison(
        baseline=[str(r.path) for r in base],
        candidate=[str(r.path) for r in cand],
        baseline_identity=" + ".join(sorted(ids_a)),
        candidate_identity=" + ".join(sorted(ids_b)),
        comparable=comparable,
        reason="" if comparable else "different scenario or stack",
        alpha=opts.alpha,
        confidence=stats.CONFIDENCE,
        rows=rows,
    )


def _identities(runs: Iterable[Run]) -> set[str]:
    return {r.identity for r in runs}


def _row(fig: _Fig, base: list[Run], cand: list[Run], opts: Options, comparable: bool) -> Row:
    spec = fig.spec
    key = f"{fig.scope}/{spec.name}"
    head = dict(
        scope=fig.scope,
        figure=spec.name,
        unit=spec.unit,
        better=spec.better,
        relative=spec.relative,
        gating=_gating(key, spec, opts),
        floor=_floor(spec, opts),
    )
    have_a = [(r, v) for r in base if (v := _run_value(r, fig)) is not None]
    have_b = [(r, v) for r in cand if (v := _run_value(r, fig)) is not None]
    single = len(have_a) == len(have_b) == 1
    method: Method = "runs"
    if single and fig.scope == "capacity":
        method = "search"
    elif single and have_a[0][0].kind == "traffic":
        method = "requests"
    if not comparable or not have_a or not have_b:
        note = "different scenario or stack" if not comparable else "not measured on one side"
        est = Estimate(
            baseline=None, candidate=None, change=None, verdict="not comparable", note=note
        )
    elif method == "search":
        est = search_intervals(spec, have_a[0][0].capacity, have_b[0][0].capacity, opts)
    elif method == "requests":
        (ra, _), (rb, _) = have_a[0], have_b[0]
        sides = [(F.scope_calls(r.calls, fig.scope), r.window) for r in (ra, rb)]
        est = within_run(spec, sides[0], sides[1], opts)
    else:
        est = across_runs(spec, [v for _, v in have_a], [v for _, v in have_b], opts)
    return Row(**head, method=method, **dict(est))
