"""Open-loop arrival schedules: absolute send offsets from phases of (possibly ramping) rates.

A schedule is computed in "unit time" u = Λ(t), the cumulative expected number of arrivals (the
integral of the rate). An arrival model only says how far apart arrivals are in u (constant: 1,
Poisson: Exp(1)); mapping u back to t through the phases' piecewise-linear rate gives the send
times. So a new arrival model is one small registered class, and ramps and phase boundaries are
handled once for all of them.

With N generator streams (workers), stream k takes every N-th arrival of the whole schedule
(constant) or a Poisson process of 1/N of the intensity (poisson); together they make the full
schedule.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol


class PhaseLike(Protocol):
    name: str
    duration_s: float
    rate: float | None
    ramp_to: float | None


@dataclass(frozen=True)
class Segment:
    name: str
    start: float  # offset of the phase start, s
    duration: float
    r0: float  # rate at start, 1/s
    r1: float  # rate at end, 1/s
    u0: float  # Λ at start

    @property
    def mass(self) -> float:
        return (self.r0 + self.r1) / 2 * self.duration

    def invert(self, du: float) -> float:
        """Offset into this segment where Λ has grown by du (0 <= du <= mass)."""
        a = (self.r1 - self.r0) / (2 * self.duration)
        # Solves r0*τ + a*τ² = du in the form that stays exact when a -> 0.
        return 2 * du / (self.r0 + math.sqrt(max(self.r0 * self.r0 + 4 * a * du, 0.0)))


def segments(phases: list[PhaseLike]) -> list[Segment]:
    out, t, u = [], 0.0, 0.0
    for p in phases:
        r0 = float(p.rate or 0.0)
        r1 = float(p.ramp_to if p.ramp_to is not None else r0)
        seg = Segment(p.name, t, float(p.duration_s), r0, r1, u)
        out.append(seg)
        t += seg.duration
        u += seg.mass
    return out


def expected_arrivals(phases: list[PhaseLike]) -> float:
    """Λ over the whole schedule: how many calls the target rate asks for."""
    return sum(s.mass for s in segments(phases))


def phase_at(phases: list[PhaseLike], offset: float) -> str:
    """Name of the phase running at `offset` seconds after the start (last phase after the end)."""
    t = 0.0
    for p in phases:
        t += p.duration_s
        if offset < t:
            return p.name
    return phases[-1].name


# -- arrival models, registered by name ------------------------------------------------------


class ArrivalModel(Protocol):
    def first(self, stream: int, streams: int, rng: random.Random) -> float: ...
    def gap(self, streams: int, rng: random.Random) -> float: ...


ARRIVAL_MODELS: dict[str, ArrivalModel] = {}


def arrival_model(name: str) -> Callable[[type], type]:
    def register(cls: type) -> type:
        ARRIVAL_MODELS[name] = cls()
        return cls

    return register


@arrival_model("constant")
class Constant:
    """Evenly spaced; stream k of N sends arrivals k, k+N, k+2N, ... (centred in their slot)."""

    def first(self, stream: int, streams: int, rng: random.Random) -> float:
        return stream + 0.5

    def gap(self, streams: int, rng: random.Random) -> float:
        return float(streams)


@arrival_model("poisson")
class Poisson:
    """Exponential inter-arrivals; N independent streams of 1/N intensity superpose to one."""

    def first(self, stream: int, streams: int, rng: random.Random) -> float:
        return rng.expovariate(1.0) * streams

    def gap(self, streams: int, rng: random.Random) -> float:
        return rng.expovariate(1.0) * streams


def arrivals(
    phases: list[PhaseLike],
    model: str,
    stream: int = 0,
    streams: int = 1,
    rng: random.Random | None = None,
) -> Iterator[tuple[float, str]]:
    """Yield (offset_s, phase name) of each send of stream `stream` of `streams`, in order."""
    if model not in ARRIVAL_MODELS:
        raise ValueError(f"unknown arrival model {model!r} (known: {sorted(ARRIVAL_MODELS)})")
    if not 0 <= stream < streams:
        raise ValueError(f"stream {stream} out of range for {streams} streams")
    m, rng = ARRIVAL_MODELS[model], rng or random.Random()
    segs = [s for s in segments(phases) if s.mass > 0]
    u = m.first(stream, streams, rng)
    i = 0
    while i < len(segs):
        seg = segs[i]
        if u > seg.u0 + seg.mass:
            i += 1
            continue
        yield seg.start + seg.invert(u - seg.u0), seg.name
        u += m.gap(streams, rng)
