"""The gate is right both ways: it passes the reference twin, and each gate FAILS against a twin
that lacks the mechanism it checks. Driven through the real plugin (a `pytest loadtests`
subprocess with --twin-override), asserting the verdicts written to summary.json.

One reference session runs all four gates (shared); each broken twin runs only its own gate.
About 6.5 minutes on the 2-core machine (BENCHMARKS.md, "Gate").
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loadgate.report.summary import read_summary

ROOT = Path(__file__).resolve().parents[2]
GATES = ("balance", "fail_fast", "readiness", "scale_up")
TESTS = {
    "balance": "test_least_request_balance",
    "fail_fast": "test_fail_fast",
    "readiness": "test_readiness_dropout",
    "scale_up": "test_keda_scale_up",
}

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def run_gates(
    report_dir: Path, run_id: str, gates: tuple[str, ...], overrides: tuple[str, ...] = ()
):
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "loadtests"), "-p", "no:cacheprovider",
           "-q", "--config", str(ROOT / "loadgate.yaml"), "--report-dir", str(report_dir),
           "--run-id", run_id, "-k", " or ".join(TESTS[g] for g in gates)]  # fmt: skip
    for o in overrides:
        cmd += ["--twin-override", o]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    summary = read_summary(report_dir / run_id)
    by_gate: dict[str, list] = {}
    for v in summary.gates:
        by_gate.setdefault(v.gate, []).append(v)
    return proc, summary, by_gate


def _failed(verdicts) -> list[str]:
    return [v.message for v in verdicts if not v.passed]


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("gate-reports")


@pytest.mark.timeout(900)
def test_reference_twin_passes_every_gate(reports):
    proc, summary, by_gate = run_gates(reports, "reference", GATES)
    tail = proc.stdout[-3000:]
    assert set(by_gate) == set(GATES), f"gates with verdicts: {sorted(by_gate)}\n{tail}"
    for gate in GATES:
        assert not _failed(by_gate[gate]), f"reference twin failed {gate}: {_failed(by_gate[gate])}"
    assert summary.valid and summary.passed, tail
    assert proc.returncode == 0, tail
    run = reports / "reference"
    for name in ("summary.json", "samples.parquet", "timeline.parquet", "junit.xml", "report.html"):
        assert (run / name).stat().st_size > 0, f"{name} missing from {run}"


# gate -> (override that removes its mechanism, the figure that must catch it)
BROKEN = {
    "balance": ("lb=round_robin", {"imbalance_p95", "imbalance_mean"}),
    "fail_fast": ("max_requests=0", {"admitted_inflight_peak"}),
    "readiness": ("ready_max_queue=0", {"drops", "overloads_not_dropped"}),
    "scale_up": ("no_autoscaler=true", {"max_ready", "time_to_capacity_s"}),
}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("gate", GATES)
def test_gate_fails_without_its_mechanism(reports, gate):
    override, figure = BROKEN[gate]
    proc, summary, by_gate = run_gates(reports, f"broken-{gate}", (gate,), (override,))
    verdicts = by_gate.get(gate, [])
    assert proc.returncode == 1, f"pytest exit {proc.returncode}\n{proc.stdout[-3000:]}"
    measured = [v for v in verdicts if v.figure not in ("generator", "error")]
    failed = [v for v in measured if not v.passed]
    assert failed, f"{gate} did not fail on a figure with {override}: " + "; ".join(
        v.message for v in verdicts
    )
    if figure is not None:
        assert figure & {v.figure for v in failed}, [v.message for v in failed]
    assert not summary.passed
