"""Plain-text tables of a comparison and of a capacity search (what the commands print)."""

from __future__ import annotations

import math

from loadgate.regression.compare import Comparison, Row, Side
from loadgate.regression.result import CapacityResult


def num(x: float | None) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.4g}" if abs(x) < 1e5 else f"{x:,.0f}"


def _side(s: Side | None) -> str:
    if s is None or s.value is None:
        return "-"
    return f"{num(s.value)} [{num(s.lo)}, {num(s.hi)}]"


def _change(r: Row) -> str:
    if r.change is None:
        return "-"
    return f"{r.change * 100:+.1f}%" if r.relative else f"{r.change:+.4g}"


VERDICT_MARK = {"no change": "~"}


def _columns(rows: list[list[str]]) -> list[str]:
    widths = [max(len(c) for c in col) for col in zip(*rows, strict=True)]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def comparison_table(c: Comparison) -> str:
    head = [
        f"baseline:  {', '.join(c.baseline)}",
        f"           {c.baseline_identity}",
        f"candidate: {', '.join(c.candidate)}",
        f"           {c.candidate_identity}",
        f"alpha {c.alpha:g}, intervals {c.confidence:.0%}; * = gating; ~ = no significant "
        "change beyond the floor",
    ]
    if not c.comparable:
        head.append(f"NOT COMPARABLE: {c.reason}")
    rows = [["figure", "baseline", "candidate", "change", "p", "n", "verdict"]]
    for r in c.rows:
        n = "-" if r.baseline is None else f"{r.baseline.runs}+{r.candidate.runs}"
        rows.append(
            [
                f"{r.scope} {r.figure}{' *' if r.gating else ''}",
                _side(r.baseline),
                _side(r.candidate),
                _change(r),
                "-" if r.p is None else ("<0.001" if r.p < 0.001 else f"{r.p:.3f}"),
                n,
                VERDICT_MARK.get(r.verdict, r.verdict) + (f"  ({r.note})" if r.note else ""),
            ]
        )
    lines = head + [""] + _columns(rows)
    if any(r.method == "requests" for r in c.rows):
        lines.append(
            "1 run per side: intervals over requests (moving-block bootstrap of 1 s buckets, "
            "widened for few blocks); they do not include run-to-run noise: use >= 4 runs a "
            "side (10 recommended) for a verdict you gate on"
        )
    lines += [f"warning: {w}" for w in c.warnings]
    bad = c.regressed_gating
    if bad:
        lines.append(f"REGRESSED: {', '.join(r.key for r in bad)}")
    return "\n".join(lines)


def capacity_table(r: CapacityResult) -> str:
    unit = r.unit
    rows = [
        ["#", f"load {unit}", "verdict", "runs", "goodput/s", "errors", "rejected", "worst SLO"]
    ]
    for i, p in enumerate(r.probes, 1):
        errs = [c.error_rate for c in p.classes.values() if c.error_rate is not None]
        rej = [c.rejected_share for c in p.classes.values() if c.rejected_share is not None]
        calls = [c.calls for c in p.classes.values()]
        total = sum(calls) or 1
        err = sum(e * n for e, n in zip(errs, calls, strict=False)) / total if errs else None
        rj = sum(e * n for e, n in zip(rej, calls, strict=False)) / total if rej else None
        worst = p.worst
        rows.append(
            [
                str(i),
                f"{p.load:g}",
                p.verdict,
                str(p.attempts),
                num(p.goodput_per_s),
                "-" if err is None else f"{err:.1%}",
                "-" if rj is None else f"{rj:.1%}",
                f"{worst.cls} {worst.figure} {num(worst.value)} / {worst.bound:g}"
                + (f" ({worst.over} of {worst.counted} over)" if worst.counted else "")
                if worst
                else "-",
            ]
        )
    lines = _columns(rows)
    head = "capacity: none found" if r.capacity is None else f"capacity: {num(r.capacity)} {unit}"
    loads = [p.load for p in r.probes if p.verdict != "invalid"] or [0.0]
    lo = num(r.lo) if r.lo is not None else f"below {min(loads):g}"
    hi = num(r.hi) if r.hi is not None else f"above {max(loads):g}"
    lines.append(
        f"{head} (95 % interval {lo} - {hi}: where a non-decreasing curve through every probe's "
        f"share of calls over each SLO crosses the share allowed; bisection tolerance "
        f"{r.tolerance:.0%}); {len(r.probes)} probes in {r.duration_s:.0f} s"
    )
    if r.note:
        lines.append(f"note: {r.note}")
    if not r.complete:
        lines.append("INCOMPLETE: the search stopped before its tolerance")
    return "\n".join(lines)
