"""One gate's run: its scenario's load against the stack (plus an optional `during` action), the
samples, the proxy's records and the timeline it produced, and the verdicts the test records.

    run = run_gate("readiness", during=flood_one_pod)   # the pytest fixture
    r = judge.readiness(run.samples, run.timeline, ...)
    run.check("calls_to_not_ready", r.calls_to_not_ready)   # direction and threshold: catalogue
    run.assert_passed()

`during(platform, load_start)` runs in a background thread while the load runs (pod kills,
floods); its return value is `run.during_result`, an exception it raises fails the gate.
A run whose traffic generator fell behind is INVALID: `assert_passed()` fails it whatever the
figures say, because its figures describe the generator, not the stack.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from loadgate.config import StrictModel
from loadgate.errors import UserError
from loadgate.gate.catalogue import GateDef
from loadgate.judge.verdict import Verdict, check
from loadgate.platform.base import Platform
from loadgate.platform.facts import DeploymentFacts
from loadgate.traffic.scenario import Scenario

if TYPE_CHECKING:
    from loadgate.traffic.runner import RunResult

During = Callable[[Platform, float], Any]  # (platform, load start epoch s) -> anything


@dataclass
class GateRun:
    gate: GateDef
    scenario: Scenario
    out_dir: Path
    samples: pd.DataFrame
    proxy: pd.DataFrame  # Envoy's access log records of the gate (PROXY contract)
    timeline: pd.DataFrame
    started: float  # load start, epoch s
    ended: float
    generator: dict[str, Any]  # the traffic summary's generator health (valid, reasons, lag...)
    thresholds: dict[str, float]
    params: StrictModel  # the gate's judge parameters (catalogue.GateDef.params)
    window_phase: str | None
    facts: DeploymentFacts
    pods: list[str]  # pod addresses (served_by values) when the load started
    platform: Platform
    during_result: object = None  # whatever the `during` action returned
    during_error: str | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    figures: dict[str, float | None] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.gate.name

    @property
    def valid(self) -> bool:
        return bool(self.generator.get("valid", True))

    @property
    def invalid_reason(self) -> str:
        return "; ".join(self.generator.get("invalid_reasons") or []) or "generator fell behind"

    def window(self) -> tuple[float, float]:
        """(t0, t1) of the judged phase's sends (the whole run without a window)."""
        s = self.samples
        if self.window_phase is not None:
            s = s[s["phase"] == self.window_phase]
        if s.empty:
            return self.started, self.ended
        return float(s["intended"].min()), float(s["intended"].max())

    def threshold(self, key: str) -> float:
        if key not in self.thresholds:
            raise UserError(f"loadgate.yaml: gates.{self.name}.thresholds.{key} is not set")
        return float(self.thresholds[key])

    def check(self, figure: str, value: float | None, detail: str = "") -> Verdict:
        """Record one figure of the catalogue against its threshold in loadgate.yaml."""
        f = self.gate.figure(figure)
        meaning = f"{f.meaning}; {detail}" if detail else f.meaning
        v = check(
            self.name,
            figure,
            value,
            f.direction,
            self.threshold(f.threshold_key),
            unit=f.unit,
            what=meaning,
        )
        self.verdicts.append(v)
        self.figures[figure] = None if value is None else float(value)
        return v

    def note(self, figure: str, value: float | None) -> None:
        """A figure kept in summary.json without a verdict."""
        self.figures[figure] = None if value is None else float(value)

    @property
    def passed(self) -> bool:
        return self.valid and self.during_error is None and all(v.passed for v in self.verdicts)

    def failure_message(self) -> str:
        lines = []
        if not self.valid:
            lines.append(f"INVALID: the traffic generator fell behind ({self.invalid_reason})")
        if self.during_error:
            lines.append(f"the action run during the load failed: {self.during_error}")
        lines += [v.message for v in self.verdicts if not v.passed]
        return f"gate {self.name}: " + "\n  ".join(lines)

    def assert_passed(self) -> None:
        checked = {v.figure for v in self.verdicts}
        unchecked = [f.name for f in self.gate.figures if f.name not in checked]
        if unchecked and self.valid:
            raise AssertionError(f"gate {self.name}: figures not checked: {', '.join(unchecked)}")
        assert self.passed, self.failure_message()


def run_load(
    scenario: Scenario,
    target: str,
    out_dir: Path,
    processes: int,
    platform: Platform,
    during: During | None,
    say: Callable[[str], None],
) -> tuple[RunResult, Any, str | None]:
    """Run the scenario to its end with `during` in a background thread; returns
    (RunResult, during's result, during's error or None)."""
    from loadgate.traffic.runner import start_scenario

    handle = start_scenario(scenario, target, out_dir, processes)
    box: dict[str, Any] = {}
    thread = None
    if during is not None:

        def call() -> None:
            try:
                box["result"] = during(platform, handle.started)
            except Exception as e:  # reported as the gate's failure, never lost
                box["error"] = f"{type(e).__name__}: {e}"

        thread = threading.Thread(target=call, name=f"gate-during-{scenario.name}", daemon=True)
        thread.start()
    try:
        result = handle.wait(progress=say)
    finally:
        if handle.running:
            handle.stop()
            handle.kill()
    if thread is not None:
        thread.join(timeout=max(5.0, scenario.duration_s))
        if thread.is_alive():
            box.setdefault("error", "still running after the load ended")
    return result, box.get("result"), box.get("error")
