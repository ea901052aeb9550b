"""capacity.json: what `loadgate capacity` found, typed (written by capacity, read by compare,
the HTML page and baselines)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from loadgate.errors import UserError
from loadgate.traffic.stacks import StackInfo

CAPACITY_FILE = "capacity.json"
Decision = Literal["pass", "fail", "undecided"]
ProbeVerdict = Literal["pass", "fail", "undecided", "saturated", "invalid"]
LoadKind = Literal["rate", "users"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SloCheck(_Model):
    """One SLO of one class at one probe: the figure with its interval (shown), and the calls
    over the bound against the share allowed over it (what decides: a p99 <= B is "at most 1 %
    of calls slower than B")."""

    cls: str
    slo: str  # scenario key, e.g. ttft_p99_ms
    figure: str  # figure it limits, e.g. ttft_p99_ms
    bound: float
    value: float | None
    lo: float | None
    hi: float | None
    decision: Decision
    counted: int = 0  # calls the SLO judges (successful ones for a percentile, all for errors)
    over: int = 0  # of them over the bound (or failed, for error_rate_max)
    episodes: int = 0  # runs of consecutive seconds holding those: misses that came together
    allowed: float = 0.0  # the share of counted calls allowed over: 1 - q, or error_rate_max


class ClassPoint(_Model):
    """A class's figures at one probe (the curve)."""

    calls: int
    goodput_per_s: float
    error_rate: float | None
    rejected_share: float | None
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    ttft_p50_ms: float | None = None
    ttft_p99_ms: float | None = None
    itl_p50_ms: float | None = None
    itl_p99_ms: float | None = None


class Probe(_Model):
    load: float
    attempts: int  # runs pooled into this verdict (invalid ones not counted)
    verdict: ProbeVerdict
    reason: str = ""
    run_dirs: list[str]  # relative to the capacity directory
    measured_s: float  # judged seconds, all pooled runs
    goodput_per_s: float | None = None
    classes: dict[str, ClassPoint] = {}
    checks: list[SloCheck] = []
    backlog: bool = False  # stopped as its calls in flight kept growing: its rows undercount

    @classmethod
    def invalid(cls, load: float, reason: str, run_dirs: list[str] | None = None) -> Probe:
        """A probe with no trustworthy attempt (generator behind, or interrupted)."""
        return cls(
            load=load,
            attempts=0,
            verdict="invalid",
            reason=reason,
            run_dirs=run_dirs or [],
            measured_s=0.0,
        )

    @property
    def passed(self) -> bool:
        """The bisection's view: every SLO figure within its bound (decided or not)."""
        if self.verdict in ("pass", "fail", "saturated", "invalid"):
            return self.verdict == "pass"
        return all(c.value is None or c.value <= c.bound for c in self.checks)

    @property
    def worst(self) -> SloCheck | None:
        """The SLO figure nearest to (or furthest beyond) its bound."""
        measured = [c for c in self.checks if c.value is not None]
        return max(measured, key=lambda c: c.value / c.bound, default=None)


class CapacityResult(_Model):
    scenario: str
    identity: str  # scenario identity + stack identity: what compare requires to be equal
    stack: StackInfo
    load_kind: LoadKind
    unit: str  # calls/s or users
    capacity: float | None  # where the fit through every probe crosses (regression/capacity.py)
    lo: float | None  # its 95 % interval (None: below the lowest load probed)
    hi: float | None  # (None: above the highest load probed: capacity >= that load)
    tolerance: float
    complete: bool  # the search reached its tolerance (or the max) with trustworthy probes
    note: str = ""
    probes: list[Probe]
    started: float
    finished: float

    @property
    def duration_s(self) -> float:
        return self.finished - self.started


def write_result(out_dir: Path, result: CapacityResult) -> Path:
    path = out_dir / CAPACITY_FILE
    path.write_text(result.model_dump_json(indent=2) + "\n")
    return path


def read_result(out_dir: Path) -> CapacityResult:
    path = out_dir / CAPACITY_FILE
    try:
        return CapacityResult.model_validate(json.loads(path.read_text()))
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (json.JSONDecodeError, ValidationError) as e:
        raise UserError(
            f"{path}: not a loadgate capacity result ({str(e).splitlines()[0]})"
        ) from None
