"""The capacity search: the highest load at which every class meets its SLOs.

Exponential ramp (double the load from `start` while probes pass; halve it while the first one
fails), then bisection between the highest passing and the lowest failing load until
hi / lo <= 1 + tolerance (closed loop: until they are one user apart). The bisection follows
each probe's point verdict (every SLO figure within its bound): it only chooses where to probe.

The capacity and its interval come from every probe together. Each SLO is a share: a p99 <= B
says at most 1 % of calls slower than B, error_rate_max at most that share failed. That share
only grows with the load, so across the probes it is fitted by centred isotonic regression
(a non-decreasing curve through the probes' shares, each weighted by its calls) and the SLO's
capacity is where the curve crosses the share allowed; the capacity is the lowest over the
SLOs some probe missed. One probe rarely decides a tail near the knee (its misses come in
bursts: a pod full of long streams delays every call it takes for a few seconds), but the
probes around the knee together do. The interval: per SLO, each probe's share drawn from its
Jeffreys posterior with its misses counted as bursts (misses in consecutive seconds) out of as
many trials, the curve fitted to each draw and crossed; the capacity's interval is the lowest
of the SLOs' 2.5 % ends to the lowest of their 97.5 % ends. An end the data cannot bound (below
the lowest load probed, above the highest) is open (docs/regression.md).

An INVALID probe (generator fell behind after its retries) ends the search: what was found so
far is reported, marked incomplete.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from loadgate.regression import stats
from loadgate.regression.result import CapacityResult, LoadKind, Probe
from loadgate.traffic.scenario import CapacitySearch
from loadgate.traffic.stacks import StackInfo

MAX_HALVINGS = 4
DRAWS = 1000  # posterior draws for the interval


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


class _Invalid(Exception):
    """A probe the search cannot trust: it ends there."""


def search(
    measure: Callable[[float], Probe],
    cfg: CapacitySearch,
    integer: bool = False,
    say: Callable[[str], None] = lambda _m: None,
    clock: Callable[[], float] = time.monotonic,
) -> Found:
    """Run probes through `measure` and summarise them (pure given `measure` and `clock`)."""
    probes: list[Probe] = []
    began = clock()

    def probe(load: float) -> bool:
        p = measure(load)
        probes.append(p)
        say(_line(p))
        if p.verdict == "invalid":
            raise _Invalid(f"probe at {load:g} was invalid: {p.reason}")
        return p.passed

    try:
        note = _walk(probe, cfg, integer)
        if not note:  # a bracket: spend `refine` probes where the fit is least sure
            for _ in range(cfg.refine):
                spent = clock() - began
                if (
                    cfg.budget_s is not None
                    and spent * (len(probes) + 1) / len(probes) > cfg.budget_s
                ):
                    say(f"  no refine probe: the next would end past the {cfg.budget_s:g} s budget")
                    break
                probe(_refine_at(probes, cfg, integer))
    except _Invalid as e:
        return _found(probes, False, str(e), integer)
    return _found(probes, True, note, integer)


def _walk(passes: Callable[[float], bool], cfg: CapacitySearch, integer: bool) -> str:
    """Ramp, then bisect, on point verdicts; returns what to note about where it ended."""
    lo: float | None = None
    hi: float | None = None
    load = float(round(cfg.start)) if integer else cfg.start
    if passes(load):
        lo = load
        while lo < cfg.max:
            load = _next_up(lo, cfg, integer)
            if not passes(load):
                hi = load
                break
            lo = load
    else:
        hi = load
        for _ in range(MAX_HALVINGS):
            load = float(int(hi) // 2) if integer else hi / 2
            if load < (1 if integer else 1e-3) or load == hi:
                break
            if passes(load):
                lo = load
                break
            hi = load
        if lo is None:
            return f"no load passed (down to {hi:g})"
    if hi is None:
        return f"capacity >= max ({cfg.max:g})"
    while not _narrow(lo, hi, cfg, integer):
        load = _mid(lo, hi, integer)
        if passes(load):
            lo = load
        else:
            hi = load
    return ""


def _refine_at(probes: list[Probe], cfg: CapacitySearch, integer: bool) -> float:
    """The next load to probe: one tolerance step above the highest load when the interval is
    open above, else the fitted capacity, else halfway to the wider end of its interval (none
    closer than a quarter of the tolerance to a load already probed), else again the probed
    load nearest the capacity (its own arrivals: more calls where the fit crosses). Never below
    an open lower end: lower loads carry fewer calls, so they bound it no better."""
    capacity, lo, hi = estimate(probes, integer)
    loads = [p.load for p in probes if p.verdict != "invalid"]
    top, bottom = max(loads), min(loads)
    middle = capacity if capacity is not None else bottom
    wanted = [] if hi is not None else [top + 1 if integer else top * (1 + cfg.tolerance)]
    lo, hi = middle if lo is None else lo, top if hi is None else hi
    halves = sorted(((middle - lo, (lo + middle) / 2), (hi - middle, (middle + hi) / 2)))
    wanted += [middle, halves[1][1], halves[0][1]]
    for x in wanted:
        x = float(round(x)) if integer else round(x, 2)
        near = 0.5 if integer else x * cfg.tolerance / 4
        if 0 < x <= cfg.max and all(abs(x - y) > near for y in loads):
            return x
    return min(loads, key=lambda y: abs(y - middle))


def _found(probes: list[Probe], complete: bool, note: str, integer: bool = False) -> Found:
    capacity, lo, hi = estimate(probes, integer)
    return Found(probes, capacity, lo, hi, complete, note)


@dataclass(frozen=True)
class Shares:
    """One SLO across the probes: each probe's load, calls judged and calls that missed, its
    share fixed at 1 where the probe was stopped with a growing backlog."""

    cls: str
    slo: str
    allowed: float
    loads: np.ndarray
    counted: np.ndarray
    over: np.ndarray
    backlog: np.ndarray
    per_burst: np.ndarray  # misses per burst: a probe's own; where it had no miss or was
    # stopped, that of the lowest load that had one and ran to its end, scaled by the load (a
    # burst lasts about as long, and takes the calls that arrive meanwhile); none: 1

    @property
    def observed(self) -> np.ndarray:
        """Each probe's share as seen: its misses over its calls, 1 where it backlogged."""
        return np.where(self.backlog, 1.0, self.over / np.maximum(self.counted, 1))

    def effective(self) -> tuple[np.ndarray, np.ndarray]:
        k, n = stats.effective_counts(self.over, self.counted, self.per_burst)
        return k, np.maximum(n, 1.0)

    def fit(self, share: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The non-decreasing curve through `share` (one per probe), weighted by their calls."""
        _, n = self.effective()
        return stats.isotonic(self.loads, np.where(self.backlog, 1.0, share), n)

    def crossing(self, share: np.ndarray) -> float:
        return stats.crossing(*self.fit(share), self.allowed)


def shares(probes: list[Probe]) -> list[Shares]:
    """The shares of every SLO that some probe missed, over the judged probes in load order. A
    probe stopped with a growing backlog counts as every call missing: the calls still waiting
    when it stopped are in none of its rows. One stopped for its SLO budget counts as measured
    up to then."""
    judged = sorted((p for p in probes if p.verdict != "invalid"), key=lambda p: p.load)
    keys = list(dict.fromkeys((c.cls, c.slo) for p in judged for c in p.checks))
    out = []
    for key in keys:
        rows = [
            (p, c)
            for p in judged
            for c in p.checks
            if (c.cls, c.slo) == key and (c.counted > 0 or p.backlog)
        ]
        if not any(c.over for _, c in rows) and not any(p.backlog for p, _ in rows):
            continue  # no probe missed it: it does not bind in the loads probed
        # the burst size of the lowest load that missed and ran to its end (a stopped probe's
        # bursts merge into one); none such: no sign of bursts, each miss its own
        whole = [
            (p.load, c.over / c.episodes) for p, c in rows if c.over and p.verdict != "saturated"
        ]
        ref_load, ref_burst = whole[0] if whole else (0.0, 1.0)
        out.append(
            Shares(
                cls=key[0],
                slo=key[1],
                allowed=rows[0][1].allowed,
                loads=np.array([p.load for p, _ in rows], dtype=float),
                counted=np.array([c.counted for _, c in rows], dtype=float),
                over=np.array([c.over for _, c in rows], dtype=float),
                backlog=np.array([p.backlog for p, _ in rows]),
                per_burst=np.array(
                    [
                        c.over / c.episodes
                        if c.over and p.verdict != "saturated"
                        else ref_burst * p.load / ref_load  # as long, at this rate
                        if whole
                        else 1.0
                        for p, c in rows
                    ]
                ),
            )
        )
    return out


def estimate(
    probes: list[Probe], integer: bool = False, seed: int = 0
) -> tuple[float | None, float | None, float | None]:
    """(capacity, lo, hi) from every judged probe (module docstring). None for the capacity:
    no load met every SLO; for lo: below the lowest load probed; for hi: above the highest
    (the capacity is then that highest load)."""
    curves = shares(probes)
    loads = [p.load for p in probes if p.verdict != "invalid"]
    stopped = [p.load for p in probes if p.verdict == "saturated"]
    if not loads:
        return None, None, None
    if not curves:  # nothing missed but in stopped probes: capacity up to the first of them
        below = [x for x in loads if not stopped or x < min(stopped)]
        top = max(below, default=None)
        return top, top, min(stopped, default=None)
    half = (1 - stats.CONFIDENCE) / 2
    rng = np.random.default_rng(seed)
    point, lo, hi = math.inf, math.inf, math.inf
    for s in curves:  # capacity = the lowest SLO's: [min of the lows, min of the highs]
        k, n = s.effective()
        draws = [s.crossing(row) for row in stats.jeffreys_draws(k, n, DRAWS, rng)]
        point = min(point, s.crossing(s.observed))
        lo = min(lo, float(np.quantile(draws, half, method="lower")))
        hi = min(hi, float(np.quantile(draws, 1 - half, method="higher")))
    # the fit through the shares seen (point) and the draws' middle differ most where few calls
    # were judged: the interval is widened to hold the point
    lo, hi = min(lo, point), max(hi, point)
    top = max(loads)
    capacity = None if point == -math.inf else min(point, top)
    lo_out = None if lo == -math.inf else min(lo, top)
    hi_out = None if hi == math.inf else hi
    if integer:
        capacity = None if capacity is None or capacity < 1 else float(math.floor(capacity))
        lo_out = None if lo_out is None else float(math.floor(lo_out))
        hi_out = None if hi_out is None else float(math.ceil(hi_out))
    else:
        capacity, lo_out, hi_out = (
            None if x is None else round(x, 3) for x in (capacity, lo_out, hi_out)
        )
    return capacity, lo_out, hi_out


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
