"""A gameday's verdicts from its Chaos Toolkit journal: whether the steady state held, and each
hypothesis probe's output against its tolerance, so a FAIL says what was measured."""

from __future__ import annotations

import math
from typing import Any

from loadgate.judge.verdict import Verdict, check

GATE = "chaos"
INTERRUPTED = "interrupted"


def steady_state_verdict(journal: dict[str, Any], title: str) -> Verdict:
    """steady_state_met: 1 when the experiment completed without deviating. An interrupted one
    is INVALID: its hypothesis was never judged after the method."""
    status = journal.get("status")
    met = status == "completed" and not journal.get("deviated")
    interrupted = status == INTERRUPTED
    return check(
        GATE,
        "steady_state_met",
        None if interrupted else 1.0 if met else 0.0,
        "==",
        1.0,
        what=f"{title}: journal status {status}, deviated {bool(journal.get('deviated'))}",
        untrusted=["the experiment was interrupted before its end"] if interrupted else [],
    )


def probe_verdicts(journal: dict[str, Any]) -> list[Verdict]:
    """One verdict per hypothesis probe, before and after the method (in journal order)."""
    out = []
    states = journal.get("steady_states") or {}
    for when in ("before", "after"):
        for probe in (states.get(when) or {}).get("probes") or []:
            out.append(probe_verdict(f"hypothesis {when}", probe))
    return out


def probe_verdict(gate: str, probe: dict[str, Any]) -> Verdict:
    activity = probe.get("activity") or {}
    name = str(activity.get("name", "probe"))
    tolerance = activity.get("tolerance")
    output = probe.get("output")
    met = probe.get("tolerance_met")
    if probe.get("status") != "succeeded":
        why = (probe.get("exception") or ["the probe failed"])[-1].strip().splitlines()[-1]
        return check(gate, name, None, "==", 1.0, what=f"the probe failed: {why}"[:300])
    bounds = _range(tolerance)
    number = _number(output)
    if bounds is not None and number is not None:
        lo, hi = bounds
        # the bound it broke; when within, the one that is not a natural floor of 0
        if number < lo or (number <= hi and lo > 0):
            comparison, threshold = ">=", lo
        else:
            comparison, threshold = "<=", hi
        v = check(gate, name, number, comparison, threshold, what=f"tolerance [{lo:g}, {hi:g}]")
        if met is None or v.passed == bool(met):
            return v
    # any other tolerance (a value, a regex, a jsonpath...): chaoslib's judgement, 1 = met
    shown = repr(output)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return check(
        gate,
        name,
        1.0 if met else 0.0,
        "==",
        1.0,
        what=f"returned {shown}, tolerance {tolerance!r}"[:300],
    )


def _range(tolerance: Any) -> tuple[float, float] | None:
    if isinstance(tolerance, dict) and tolerance.get("type") == "range":
        r = tolerance.get("range") or []
        if len(r) == 2 and all(_number(x) is not None for x in r):
            return float(r[0]), float(r[1])
    return None


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return float(x) if math.isfinite(x) else None
