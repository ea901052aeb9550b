"""The capacity search: the highest load at which every class meets its SLOs.

Exponential ramp (double the load from `start` while probes pass; halve it while the first one
fails), then bisection between the highest passing and the lowest failing load until
hi / lo <= 1 + tolerance (closed loop: until they are one user apart). The bisection follows
each probe's point verdict (every SLO figure within its bound); the reported interval only
counts probes whose verdict was decided by their intervals: [highest load decided to pass,
lowest load decided to fail]. An INVALID probe (generator fell behind after its retries) ends
the search: what was found so far is reported, marked incomplete.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from loadgate.regression.result import CapacityResult, LoadKind, Probe
from loadgate.traffic.scenario import CapacitySearch
from loadgate.traffic.stacks import StackInfo

MAX_HALVINGS = 4
CLOSE_TRIES = 3


@dataclass(frozen=True)
class Found:
    probes: list[Probe]
    capacity: float | None
    lo: float | None
    hi: float | None
    complete: bool
    note: str


def _next_up(load: float, cfg: CapacitySearch, integer: bool) -> float:
    nxt = min(load * 2, cfg.max)
    return float(max(round(nxt), load + 1)) if integer else nxt


def _mid(lo: float, hi: float, integer: bool) -> float:
    return float((int(lo) + int(hi)) // 2) if integer else round((lo + hi) / 2, 3)


def _narrow(lo: float, hi: float, cfg: CapacitySearch, integer: bool) -> bool:
    return hi - lo <= 1 if integer else hi / lo <= 1 + cfg.tolerance


def search(
    measure: Callable[[float], Probe],
    cfg: CapacitySearch,
    integer: bool = False,
    say: Callable[[str], None] = lambda _m: None,
) -> Found:
    """Run probes through `measure` and summarise them (pure given `measure`)."""
    probes: list[Probe] = []
    lo: float | None = None
    hi: float | None = None

    def probe(load: float) -> Probe | None:
        p = measure(load)
        probes.append(p)
        say(_line(p))
        return None if p.verdict == "invalid" else p

    load = float(round(cfg.start)) if integer else cfg.start
    first = probe(load)
    if first is None:
        return _found(probes, False, f"probe at {load:g} was invalid: {probes[-1].reason}")
    if first.passed:
        lo = load
        while lo < cfg.max:
            load = _next_up(lo, cfg, integer)
            p = probe(load)
            if p is None:
                return _found(probes, False, f"probe at {load:g} was invalid: {probes[-1].reason}")
            if not p.passed:
                hi = load
                break
            lo = load
    else:
        hi = load
        for _ in range(MAX_HALVINGS):
            load = float(int(hi) // 2) if integer else hi / 2
            if load < (1 if integer else 1e-3) or load == hi:
                break
            p = probe(load)
            if p is None:
                return _found(probes, False, f"probe at {load:g} was invalid: {probes[-1].reason}")
            if p.passed:
                lo = load
                break
            hi = load
        if lo is None:
            return _found(probes, True, f"no load passed (down to {hi:g})")
    while hi is not None and not _narrow(lo, hi, cfg, integer):
        load = _mid(lo, hi, integer)
        p = probe(load)
        if p is None:
            return _found(probes, False, f"probe at {load:g} was invalid: {probes[-1].reason}")
        if p.passed:
            lo = load
        else:
            hi = load
    if hi is None:
        return _found(probes, True, f"capacity >= max ({cfg.max:g})")
    for end, step, decided in ((hi, +1, False), (lo, -1, True)):
        load = end
        for _ in range(CLOSE_TRIES):
            near = [x.load for x in probes if x.decided and x.passed == decided]
            if any(min(end, load) <= x <= max(end, load) for x in near):
                break
            load = _step(load, step, cfg, integer)
            if not 0 < load <= cfg.max or any(x.load == load for x in probes):
                break
            if probe(load) is None:
                return _found(probes, False, f"probe at {load:g} was invalid: {probes[-1].reason}")
    return _found(probes, True, "")


def _step(load: float, direction: int, cfg: CapacitySearch, integer: bool) -> float:
    """The next load one step out: one user, or one tolerance."""
    if integer:
        return load + direction
    return round(load * (1 + cfg.tolerance) ** direction, 3)


def _found(probes: list[Probe], complete: bool, note: str) -> Found:
    """Capacity: the highest load that passed below the lowest that failed (point verdicts).
    Interval: the highest load decided to pass and the lowest decided to fail around it."""
    judged = [p for p in probes if p.verdict != "invalid"]
    failed = [p.load for p in judged if not p.passed]
    first_fail = min(failed) if failed else None
    passed = [p.load for p in judged if p.passed and (first_fail is None or p.load < first_fail)]
    capacity = max(passed) if passed else None
    decided_fail = [p.load for p in judged if p.decided and not p.passed]
    hi = min(decided_fail) if decided_fail else None
    decided_pass = [p.load for p in judged if p.decided and p.passed]
    lo = max((x for x in decided_pass if hi is None or x < hi), default=None)
    odd = [x for x in decided_pass if hi is not None and x > hi]
    if odd:
        note = (note + "; " if note else "") + (
            f"not monotonic: {', '.join(f'{x:g}' for x in odd)} passed above a failure at {hi:g}"
        )
    if capacity is not None and lo is not None:
        capacity = max(capacity, lo)
    return Found(probes, capacity, lo, hi, complete, note)


def _line(p: Probe) -> str:
    worst = p.worst
    what = (
        f", worst {worst.cls} {worst.figure} {worst.value:.4g} / {worst.bound:g}" if worst else ""
    )
    reason = f" ({p.reason})" if p.verdict in ("saturated", "invalid") else ""
    return f"  -> {p.verdict.upper()} at {p.load:g}{what}{reason}"


def result(
    found: Found,
    *,
    scenario: str,
    identity: str,
    stack: StackInfo,
    load_kind: LoadKind,
    tolerance: float,
    started: float,
) -> CapacityResult:
    return CapacityResult(
        scenario=scenario,
        identity=identity,
        stack=stack,
        load_kind=load_kind,
        unit="calls/s" if load_kind == "rate" else "users",
        capacity=found.capacity,
        lo=found.lo,
        hi=found.hi,
        tolerance=tolerance,
        complete=found.complete,
        note=found.note,
        probes=found.probes,
        started=started,
        finished=time.time(),
    )
