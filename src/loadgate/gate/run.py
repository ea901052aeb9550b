"""One gate's run: its scenario's load against the stack (plus an optional `during` action), the
samples, the proxy's records and the timeline it produced, and the verdicts the test records.

    run = run_gate("readiness", during=flood_one_pod)   # the pytest fixture
    r = judge.readiness(run.stack_samples, run.timeline, ...)   # the proxy's record of calls
    run.check("calls_to_not_ready", stack=r.calls_to_not_ready, client=from_client)
    run.assert_passed()

`during(platform, load_start)` runs in a background thread while the load runs (pod kills,
floods); its return value is `run.during_result`, an exception it raises fails the gate.
Each figure is judged from the source the catalogue names (the stack's records or the client's)
and is INVALID, never PASS or FAIL, when `run.trust` says that source cannot be trusted: the
load was not what the scenario asked for, the twin could not keep its simulated time, or (for
client figures) the client's own timing was off. `assert_passed()` raises AssertionError for a
FAIL and `GateInvalid` for a gate whose only non-passing figures are INVALID.
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
from loadgate.judge.stack_view import stack_calls
from loadgate.judge.trust import Trust
from loadgate.judge.verdict import Status, Verdict, check
from loadgate.platform.base import Platform
from loadgate.platform.facts import DeploymentFacts
from loadgate.traffic.scenario import Scenario

if TYPE_CHECKING:
    from loadgate.traffic.runner import RunResult

During = Callable[[Platform, float], Any]  # (platform, load start epoch s) -> anything


class GateInvalid(Exception):
    """A gate whose measurement cannot be trusted (CI may retry it): not a failure of the stack."""


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
    observation_s: float = 0.0  # how late the timeline may record a readiness change
    trust: Trust = field(default_factory=Trust)
    during_result: object = None  # whatever the `during` action returned
    during_error: str | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    figures: dict[str, float | None] = field(default_factory=dict)
    _stack: pd.DataFrame | None = field(default=None, init=False, repr=False)

    @property
    def name(self) -> str:
        return self.gate.name

    @property
    def stack_samples(self) -> pd.DataFrame:
        """The samples with Envoy's record of each call (times, pod, status) where it has one
        (`loadgate.judge.stack_view.stack_calls`)."""
        if self._stack is None:
            self._stack = stack_calls(self.samples, self.proxy)
        return self._stack

    @property
    def status(self) -> Status:
        if self.during_error is not None or any(v.status == "FAIL" for v in self.verdicts):
            return "FAIL"
        if self.trust.whole or any(v.status == "INVALID" for v in self.verdicts):
            return "INVALID"
        return "PASS"

    @property
    def valid(self) -> bool:
        return self.status != "INVALID"

    @property
    def invalid_reason(self) -> str:
        """Why figures of this gate could not be trusted ("" when all could)."""
        sources = {
            self.gate.figure(v.figure).source for v in self.verdicts if v.status == "INVALID"
        }
        reasons = list(self.trust.whole)
        if "client" in sources:
            reasons += self.trust.client
        return "; ".join(reasons)

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

    def check(
        self,
        figure: str,
        detail: str = "",
        *,
        stack: float | None = None,
        client: float | None = None,
    ) -> Verdict:
        """Record one figure of the catalogue against its threshold in loadgate.yaml. Give the
        figure as computed from the stack's records and/or from the client's: the catalogue's
        `source` says which one is judged; the other is kept in summary.json beside it
        (`<figure>.client` / `<figure>.stack`)."""
        f = self.gate.figure(figure)
        value, other = (stack, client) if f.source == "stack" else (client, stack)
        meaning = f"{f.meaning}; {detail}" if detail else f.meaning
        v = check(
            self.name,
            figure,
            value,
            f.direction,
            self.threshold(f.threshold_key),
            unit=f.unit,
            what=f"{meaning}; {f.source}'s record",
            untrusted=self.trust.reasons(f.source, f.timed),
        )
        self.verdicts.append(v)
        self.figures[figure] = None if value is None else float(value)
        if other is not None:
            self.note(f"{figure}.{'client' if f.source == 'stack' else 'stack'}", other)
        return v

    def note(self, figure: str, value: float | None) -> None:
        """A figure kept in summary.json without a verdict."""
        self.figures[figure] = None if value is None else float(value)

    @property
    def passed(self) -> bool:
        return self.status == "PASS"

    def failure_message(self) -> str:
        lines = []
        if self.trust.whole:
            lines.append(f"INVALID: {'; '.join(self.trust.whole)}")
        if self.during_error:
            lines.append(f"the action run during the load failed: {self.during_error}")
        lines += [v.message for v in self.verdicts if not v.passed]
        return f"gate {self.name}: {self.status}: " + "\n  ".join(lines)

    def assert_passed(self) -> None:
        checked = {v.figure for v in self.verdicts}
        unchecked = [f.name for f in self.gate.figures if f.name not in checked]
        if unchecked:
            raise AssertionError(f"gate {self.name}: figures not checked: {', '.join(unchecked)}")
        if self.status == "INVALID":
            raise GateInvalid(self.failure_message())
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
    except KeyboardInterrupt:  # Ctrl-C: the gate's files are written in order, marked interrupted
        say(f"gate {scenario.name}: interrupted, stopping the load in order...")
        handle.interrupted("SIGINT")
        raise
    finally:
        if handle.running:
            handle.stop()
            handle.kill()
    if thread is not None:
        thread.join(timeout=max(5.0, scenario.duration_s))
        if thread.is_alive():
            box.setdefault("error", "still running after the load ended")
    return result, box.get("result"), box.get("error")
