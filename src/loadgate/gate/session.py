"""A gate session: one run directory, one stack, every gate's run, and the files written at the end.

Layout of `reports/<run-id>/`:

    summary.json        every gate's verdicts, figures, thresholds, generator health per gate
    samples.parquet     all gates' samples; `phase` is "<gate>/<phase>" (e.g. "balance/steady")
    proxy.parquet       all gates' Envoy access log records (the PROXY contract), by request id
    timeline.parquet    all gates' timelines (pod events, readiness, replicas, autoscaler, metrics)
    junit.xml           pytest's JUnit XML
    report.html         verdict table and plots over the whole session (gates back to back)
    gates/<gate>/       that gate's own samples.parquet (phases unprefixed), proxy.parquet,
                        timeline.parquet, traffic_summary.json, Locust CSV/HTML and log
    twin/<n>/           each twin boot's run directory (Envoy config and logs, Prometheus, pods)
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from loadgate.config import StrictModel
from loadgate.errors import UserError
from loadgate.gate import catalogue
from loadgate.gate.config import GateConfig, gate_params
from loadgate.gate.run import During, GateRun, run_load
from loadgate.gate.stack import GateStack, gate_stack
from loadgate.judge.stack_view import drain_lag_s
from loadgate.judge.trust import assess
from loadgate.judge.verdict import Verdict
from loadgate.schema import write_proxy, write_samples, write_timeline
from loadgate.traffic.scenario import Scenario


def new_run_id(now: float | None = None) -> str:
    return time.strftime("gate-%Y%m%d-%H%M%S", time.localtime(now or time.time()))


class GateSession:
    def __init__(
        self,
        cfg: GateConfig,
        scenarios: dict[str, Scenario],
        run_dir: Path,
        say: Callable[[str], None],
        cfg_source: str = "loadgate.yaml",
    ) -> None:
        self.cfg, self.scenarios, self.run_dir, self.say = cfg, scenarios, run_dir, say
        self.cfg_source = cfg_source
        self.run_id = run_dir.name
        self.started = time.time()
        self.stack: GateStack | None = None
        self.runs: dict[str, GateRun] = {}
        self.errors: dict[str, str] = {}  # gate -> why its test failed without verdicts
        self.settle_s: dict[str, float] = {}
        self.written: Path | None = None

    # -- stack ----------------------------------------------------------------------------------

    def ensure_stack(self) -> GateStack:
        if self.stack is None:
            stack = gate_stack(self.cfg, self.run_dir, self.say, self.cfg_source)
            self.stack = stack
            stack.start()
        return self.stack

    def close(self) -> None:
        if self.stack is not None:
            self.stack.stop()

    # -- one gate ---------------------------------------------------------------------------------

    def params(self, gate: str) -> StrictModel:
        """The gate's judge parameters (typed by the catalogue's model for that gate)."""
        return gate_params(self.cfg, gate, self.cfg_source)

    def run_gate(self, gate: str, during: During | None = None) -> GateRun:
        if gate not in self.cfg.gates:
            raise UserError(f"{self.cfg_source}: no gate {gate!r} under 'gates:'")
        spec, scenario = self.cfg.gates[gate], self.scenarios[gate]
        profile = self.cfg.stack.twin.llm_profile
        if profile is not None and self.cfg.stack.kind == "twin":
            scenario = scenario.with_llm_profile(profile)  # the pods pose as that backend
        stack = self.ensure_stack()
        self.settle_s[gate] = stack.settle()
        out = self.run_dir / "gates" / gate
        pods = [p.address for p in stack.platform.pods()]
        self.say(
            f"gate {gate}: {scenario.name}, {scenario.duration_s:.0f}s of load -> {stack.target}"
        )
        stack.mark_proxy_log()
        collector = stack.timeline_collector().start()
        try:
            result, during_result, during_error = run_load(
                scenario, stack.target, out, spec.processes, stack.platform, during, self.say
            )
        finally:
            collector.stop()
        t0, t1 = result.started, max(result.ended, time.time())
        timeline = collector.collect(t0 - 2.0, t1 + 1.0)
        for note in collector.notes:
            self.say(f"  ({note})")
        write_timeline(timeline, out / "timeline.parquet")
        proxy = stack.proxy_records()
        write_proxy(proxy, out / "proxy.parquet")
        generator = dict(result.summary.get("generator") or {})
        trust = assess(
            generator,
            drain_lag_s(result.samples, proxy),
            timeline,
            (t0, t1),
            stack.facts.autoscaler_poll_s,
            self.cfg.trust,
        )
        run = GateRun(
            gate=catalogue.get(gate),
            scenario=scenario,
            out_dir=out,
            samples=result.samples,
            proxy=proxy,
            timeline=timeline,
            started=t0,
            ended=t1,
            generator=generator,
            thresholds=dict(spec.thresholds),
            params=self.params(gate),
            window_phase=spec.window,
            facts=stack.facts,
            pods=pods,
            platform=stack.platform,
            observation_s=stack.observation_s,
            trust=trust,
            during_result=during_result,
            during_error=during_error,
        )
        self.runs[gate] = run
        return run

    # -- the end ------------------------------------------------------------------------------------

    def verdicts(self) -> list[Verdict]:
        out: list[Verdict] = []
        for gate in sorted(self.runs.keys() | self.errors.keys(), key=catalogue.order_key):
            run = self.runs.get(gate)
            if run is not None:
                out += run.verdicts
            if gate in self.errors and not (run and any(not v.passed for v in run.verdicts)):
                out.append(
                    Verdict(
                        gate=gate,
                        figure="error",
                        value=None,
                        threshold=0.0,
                        comparison="==",
                        passed=False,
                        status="FAIL",
                        message=f"{gate}: {self.errors[gate]}",
                    )
                )
        return out

    def write(self) -> Path | None:
        """Write summary.json, combined samples/timeline and report.html; None if nothing ran."""
        if not self.runs and not self.errors:
            return None
        from loadgate import judge
        from loadgate.report import Summary, write_report, write_summary

        self.run_dir.mkdir(parents=True, exist_ok=True)
        samples = _combined_samples(self.runs)
        timeline = _combined_timeline(self.runs)
        write_samples(samples, self.run_dir / "samples.parquet")
        write_proxy(_combined_proxy(self.runs), self.run_dir / "proxy.parquet")
        write_timeline(timeline, self.run_dir / "timeline.parquet")
        invalid = [f"{g}: {r.invalid_reason}" for g, r in self.runs.items() if not r.valid]
        expected = sum((r.generator.get("target_calls") or 0) for r in self.runs.values())
        span = sum(r.scenario.duration_s for r in self.runs.values())
        summary = Summary(
            run_id=self.run_id,
            scenario="gates: " + ", ".join(sorted(self.runs, key=catalogue.order_key)),
            stack=self._stack_name(),
            started=self.started,
            finished=time.time(),
            gates=self.verdicts(),
            generator=judge.generator_health(
                samples,
                (expected / span) if span else None,
                segments=samples["phase"].str.partition("/")[0],  # one segment per gate
            )
            if len(samples)
            else None,
            valid=not invalid,
            invalid_reason="; ".join(invalid),
            figures=self._figures(),
        )
        write_summary(self.run_dir, summary)
        facts = self.stack.facts if self.stack is not None else None
        with contextlib.suppress(Exception):  # the verdicts stand even if a plot cannot be drawn
            write_report(
                self.run_dir,
                summary,
                samples,
                timeline,
                target_inflight=facts.autoscaler_target if facts else None,
                max_replicas=facts.max_replicas if facts else None,
            )
        return self.run_dir

    def _stack_name(self) -> str:
        return self.cfg.stack.kind if self.stack is None else self.stack.describe()

    def _figures(self) -> dict[str, float | None]:
        figs: dict[str, float | None] = {}
        for gate, run in self.runs.items():
            for k, v in run.figures.items():
                figs[f"{gate}.{k}"] = _num(v)
            for k in ("lag_p99_s", "achieved_ratio", "dropped"):
                figs[f"{gate}.generator.{k}"] = _num(run.generator.get(k))
            for k, v in run.trust.figures.items():
                figs[f"{gate}.trust.{k}"] = _num(v)
            for k, v in run.thresholds.items():
                figs[f"{gate}.threshold.{k}"] = _num(v)
            figs[f"{gate}.settle_s"] = _num(self.settle_s.get(gate))
        if self.stack is not None:
            figs["stack.boots"] = float(len(self.stack.boot_s))
            figs["stack.boot_s_max"] = max(self.stack.boot_s) if self.stack.boot_s else None
        return figs


def _num(v: object) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _combined_samples(runs: dict[str, GateRun]) -> pd.DataFrame:
    frames = [
        r.samples.assign(phase=f"{g}/" + r.samples["phase"].astype(str)) for g, r in runs.items()
    ]
    frames = [f for f in frames if len(f)]
    if not frames:
        from loadgate.schema import empty_samples

        return empty_samples()
    return pd.concat(frames, ignore_index=True).sort_values("intended", kind="stable")


def _combined_proxy(runs: dict[str, GateRun]) -> pd.DataFrame:
    frames = [r.proxy for r in runs.values() if len(r.proxy)]
    if not frames:
        from loadgate.schema import empty_proxy

        return empty_proxy()
    return pd.concat(frames, ignore_index=True).sort_values("start", kind="stable")


def _combined_timeline(runs: dict[str, GateRun]) -> pd.DataFrame:
    frames = [r.timeline for r in runs.values() if len(r.timeline)]
    if not frames:
        from loadgate.schema import empty_timeline

        return empty_timeline()
    out = pd.concat(frames, ignore_index=True).drop_duplicates()
    return out.sort_values("time", kind="stable").reset_index(drop=True)


def format_table(verdicts: list[Verdict] | list[dict]) -> str:
    """The verdict table printed at the end of a gate run."""
    rows = [v if isinstance(v, dict) else v.model_dump() for v in verdicts]
    if not rows:
        return "(no verdicts)"
    lines = [f"{'gate':<11} {'figure':<26} {'measured':>12}  {'expected':<14} verdict"]
    for r in rows:
        val = r["value"]
        unit = f" {r['unit']}" if r.get("unit") else ""
        meas = "-" if val is None else f"{val:.4g}{unit}"
        exp = f"{r['comparison']} {r['threshold']:.4g}{unit}"
        word = r.get("status") or ("PASS" if r["passed"] else "FAIL")
        lines.append(f"{r['gate']:<11} {r['figure']:<26} {meas:>12}  {exp:<14} {word}")
    return "\n".join(lines)
