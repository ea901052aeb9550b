"""One gate's run: its scenario's load against the stack (plus an optional `during` action), the
samples and timeline it produced, and the verdicts the test records against its thresholds.

    run = run_gate("readiness", during=flood_one_pod)   # the pytest fixture
    r = judge.readiness(run.samples, run.timeline, ...)
    run.check("calls_to_not_ready", r.calls_to_not_ready, "<=", "calls_to_not_ready_max")
    run.assert_passed()

`during(platform, load_start)` runs in a background thread while the load runs (pod kills,
floods); its return value is `run.during_result`, an exception it raises fails the gate.
A run whose traffic generator fell behind is INVALID: `assert_passed()` fails it whatever the
figures say, because its figures describe the generator, not the stack.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from loadgate.judge.verdict import Verdict, check
from loadgate.traffic.scenario import Scenario

During = Callable[[Any, float], Any]  # (platform, load start epoch s) -> anything


@dataclass
class GateRun:
    gate: str
    scenario: Scenario
    out_dir: Path
    samples: pd.DataFrame
    proxy: pd.DataFrame  # Envoy's access log records of the gate (PROXY contract)
    timeline: pd.DataFrame
    started: float  # load start, epoch s
    ended: float
    generator: dict  # the traffic summary's generator health (valid, invalid_reasons, lag...)
    thresholds: dict[str, float]
    window_phase: str | None
    facts: dict[str, Any]  # deployment numbers: batch_size, ready_max_queue, probe_s, target...
    pods: list[str]  # pod addresses (served_by values) when the load started
    platform: Any = None
    during_result: Any = None
    during_error: str | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    figures: dict[str, float | None] = field(default_factory=dict)

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
            from loadgate.errors import UserError

            raise UserError(f"loadgate.yaml: gates.{self.gate}.thresholds.{key} is not set")
        return float(self.thresholds[key])

    def check(
        self,
        figure: str,
        value: float | None,
        comparison: str,
        threshold_key: str,
        unit: str = "",
        what: str = "",
    ) -> Verdict:
        """Record one figure against the threshold named `threshold_key` in loadgate.yaml."""
        v = check(
            self.gate,
            figure,
            value,
            comparison,
            self.threshold(threshold_key),
            unit=unit,
            what=what,
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
        return f"gate {self.gate}: " + "\n  ".join(lines)

    def assert_passed(self) -> None:
        if not self.verdicts and self.valid:
            raise AssertionError(f"gate {self.gate}: no figure was checked")
        assert self.passed, self.failure_message()


def run_load(
    scenario: Scenario,
    target: str,
    out_dir: Path,
    processes: int,
    platform: Any,
    during: During | None,
    say: Callable[[str], None],
) -> tuple[Any, Any, str | None]:
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


def wait_for(pred: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()
