"""Run directories of every kind -> typed `Run`s, with one clear error for a bad one.

A side of a comparison is one or more paths, each:
- a traffic run (`loadgate run`): samples.parquet, traffic_summary.json, scenario.yaml;
- a gate run (`loadgate gate`): summary.json (its gate figures);
- a capacity run (`loadgate capacity`): capacity.json;
- a baseline (`loadgate baseline save`) or any directory whose subdirectories are runs.
A run whose generator fell behind (INVALID) measured the generator, not the stack: it is left
out with a warning.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd

from loadgate.completion import MARKER, incomplete
from loadgate.errors import UserError
from loadgate.judge.verdict import Verdict
from loadgate.regression.figures import Window, calls_frame
from loadgate.regression.result import CAPACITY_FILE, CapacityResult, read_result
from loadgate.report.summary import SUMMARY_FILE, read_summary
from loadgate.schema import read_samples
from loadgate.traffic.recorder import SAMPLES_FILE
from loadgate.traffic.scenario import Scenario, load_scenario
from loadgate.traffic.stacks import read_stack_info
from loadgate.traffic.summary import SUMMARY_FILE as TRAFFIC_SUMMARY

SCENARIO_FILE = "scenario.yaml"
BASELINE_FILE = "baseline.json"
WARMUP = "warmup"
RunKind = Literal["traffic", "gate", "capacity"]
TRAFFIC_FILES = (SAMPLES_FILE, TRAFFIC_SUMMARY, SCENARIO_FILE)
MARKERS = (CAPACITY_FILE, SUMMARY_FILE, *TRAFFIC_FILES, MARKER)


@dataclass(frozen=True)
class Run:
    path: Path
    kind: RunKind
    identity: str  # runs are comparable only when this is equal
    valid: bool = True
    invalid_reason: str = ""
    scenario: Scenario | None = None
    calls: pd.DataFrame | None = None  # traffic runs: figures.calls_frame
    window: Window | None = None
    gates: tuple[Verdict, ...] = ()
    capacity: CapacityResult | None = None
    samples: pd.DataFrame | None = field(default=None, repr=False)  # for the HTML's CDFs


def scenario_identity(sc: Scenario) -> str:
    """name@hash of what shapes the traffic and its SLOs: the seed and the description do not
    (two seeds are two samples of one scenario)."""
    data = sc.model_dump(mode="json", exclude_none=True, exclude={"description"})
    data.get("generator", {}).pop("seed", None)
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:8]
    return f"{sc.name}@{digest}"


def _traffic(path: Path, phases: tuple[str, ...]) -> Run:
    missing = [f for f in TRAFFIC_FILES if not (path / f).exists()]
    if missing:
        raise UserError(
            f"{path}: incomplete run directory: no {', '.join(missing)} "
            "(did `loadgate run` finish?)"
        )
    sc = load_scenario(path / SCENARIO_FILE)
    try:
        samples = read_samples(path / SAMPLES_FILE)
    except Exception as e:  # a truncated or foreign file is the user's input
        raise UserError(f"{path / SAMPLES_FILE}: cannot read as loadgate samples: {e}") from None
    try:
        summary = json.loads((path / TRAFFIC_SUMMARY).read_text())
    except ValueError as e:
        raise UserError(f"{path / TRAFFIC_SUMMARY}: not valid JSON ({e})") from None
    gen = summary.get("generator") or {}
    reasons = list(gen.get("invalid_reasons") or [])
    if gen.get("stopped_early"):
        reasons.append("stopped before the end of its schedule")
    names = [p.name for p in sc.phases]
    # by default every phase but warm-up (not judged, like a capacity probe's)
    chosen = [n for n in names if n in phases] if phases else [n for n in names if n != WARMUP]
    chosen = chosen or names
    unknown = sorted(set(phases) - set(names))
    if unknown:
        raise UserError(f"{path}: no phase {', '.join(unknown)} (phases: {', '.join(names)})")
    first = names.index(chosen[0])
    if chosen != names[first : first + len(chosen)]:
        raise UserError(
            f"{path}: phases {', '.join(chosen)} do not follow each other (choose with --phase)"
        )
    duration = sum(p.duration_s for p in sc.phases if p.name in chosen)
    picked = samples[samples["phase"].isin(chosen)]
    if picked.empty:
        raise UserError(f"{path}: no calls in phase(s) {', '.join(chosen)}")
    stack = read_stack_info(path)
    return Run(
        path=path,
        kind="traffic",
        identity=f"{scenario_identity(sc)} on {stack.identity() if stack else 'unknown stack'}",
        valid=not reasons,
        invalid_reason="; ".join(reasons),
        scenario=sc,
        calls=calls_frame(picked, sc),
        window=Window(float(picked["intended"].min()), duration),
        samples=picked,
    )


def _gate(path: Path) -> Run:
    s = read_summary(path)
    return Run(
        path=path,
        kind="gate",
        identity=f"{s.scenario} on {s.stack}",
        valid=s.valid,
        invalid_reason=s.invalid_reason,
        gates=tuple(s.gates),
    )


def _capacity(path: Path) -> Run:
    r = read_result(path)
    return Run(
        path=path,
        kind="capacity",
        identity=r.identity,
        valid=r.complete,
        invalid_reason=r.note,
        capacity=r,
    )


def read_run(path: Path, phases: tuple[str, ...] = ()) -> Run:
    why = incomplete(path)
    if why:  # files of a killed (or still running) run look whole but hold part of it
        raise UserError(f"{why} (it holds {MARKER}); only finished runs are read")
    if (path / CAPACITY_FILE).exists():
        return _capacity(path)
    if (path / SUMMARY_FILE).exists():
        return _gate(path)
    return _traffic(path, phases)


def is_run(path: Path) -> bool:
    return any((path / m).exists() for m in MARKERS)


def expand(path: Path) -> list[Path]:
    """The run directories a path stands for (itself, or its subdirectories that are runs)."""
    if not path.is_dir():
        raise UserError(f"{path}: no such run directory")
    if is_run(path):
        return [path]
    children = sorted(p for p in path.rglob("*") if p.is_dir() and is_run(p))
    # a run's own subdirectories (a capacity run's probes) are not runs of the side
    tops = [p for p in children if not any(q in p.parents for q in children)]
    if not tops:
        raise UserError(f"{path}: not a run directory (no {', '.join(MARKERS[:3])}) and holds none")
    return tops


def read_side(paths: list[Path], phases: tuple[str, ...] = ()) -> tuple[list[Run], list[str]]:
    """Every valid run the paths stand for, and warnings about the runs left out."""
    runs, warnings = [], []
    for p in paths:
        for d in expand(p):
            r = read_run(d, phases)
            if r.valid:
                runs.append(r)
            else:
                warnings.append(f"{d}: left out, INVALID ({r.invalid_reason})")
    if not runs:
        where = ", ".join(str(p) for p in paths)
        raise UserError(f"{where}: no valid run ({'; '.join(warnings) or 'none found'})")
    return runs, warnings
