"""The gate is right both ways: it passes the reference twin, and each gate FAILS against a twin
that lacks the mechanism it checks. Driven through the real plugin (a `pytest loadtests`
subprocess with --twin-override), asserting the verdicts written to summary.json. The gates, the
overrides that break each one and the figures that must catch it all come from the catalogue
(`loadgate.gate.catalogue`), so a new gate is covered here by its catalogue entry.

One reference session runs every gate (shared); each broken twin runs only its own gate.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loadgate.gate import catalogue
from loadgate.report.summary import read_summary

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def run_gates(report_dir: Path, run_id: str, gates: tuple[str, ...], overrides=()):
    tests = " or ".join(catalogue.get(g).test_name for g in gates)
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "loadtests"), "-p", "no:cacheprovider",
           "-q", "--config", str(ROOT / "loadgate.yaml"), "--report-dir", str(report_dir),
           "--run-id", run_id, "-k", tests]  # fmt: skip
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
    proc, summary, by_gate = run_gates(reports, "reference", catalogue.ORDER)
    tail = proc.stdout[-3000:]
    assert set(by_gate) == set(catalogue.ORDER), f"gates with verdicts: {sorted(by_gate)}\n{tail}"
    for gate in catalogue.ORDER:
        assert not _failed(by_gate[gate]), f"reference twin failed {gate}: {_failed(by_gate[gate])}"
    assert summary.valid and summary.passed, tail
    assert proc.returncode == 0, tail
    run = reports / "reference"
    for name in ("summary.json", "samples.parquet", "proxy.parquet", "timeline.parquet",
                 "junit.xml", "report.html"):  # fmt: skip
        assert (run / name).stat().st_size > 0, f"{name} missing from {run}"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("gate", catalogue.ORDER)
def test_gate_fails_without_its_mechanism(reports, gate):
    g = catalogue.get(gate)
    proc, summary, by_gate = run_gates(reports, f"broken-{gate}", (gate,), g.broken)
    verdicts = by_gate.get(gate, [])
    assert proc.returncode == 1, f"pytest exit {proc.returncode}\n{proc.stdout[-3000:]}"
    measured = [v for v in verdicts if v.figure not in ("generator", "error")]
    failed = [v for v in measured if not v.passed]
    assert failed, f"{gate} did not fail on a figure with {g.broken}: " + "; ".join(
        v.message for v in verdicts
    )
    assert g.caught_by & {v.figure for v in failed}, [v.message for v in failed]
    assert not summary.passed
