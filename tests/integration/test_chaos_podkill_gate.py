"""The pod-kill gate can fail: against a twin whose Deployment never replaces a killed pod, the
gate (run through the real plugin, as `loadgate gate` runs it) fails on the replica coming back
and on the replacement serving. The reference twin's pass is what `make gate` checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loadgate.report.summary import read_summary

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.integration]


@pytest.mark.timeout(400)
def test_pod_kill_gate_fails_when_killed_pods_are_never_replaced(tmp_path):
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "loadtests" / "test_pod_kill.py"),
           "-p", "no:cacheprovider", "-q", "--config", str(ROOT / "loadgate.yaml"),
           "--report-dir", str(tmp_path), "--run-id", "never-replaced",
           "--twin-override", "restart_delay=100000", "--twin-override", "no_autoscaler=true"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=380)
    tail = proc.stdout[-3000:]
    assert proc.returncode == 1, tail
    verdicts = {v.figure: v for v in read_summary(tmp_path / "never-replaced").gates}
    assert not verdicts["replica_back_s"].passed, tail
    assert verdicts["replica_back_s"].value is None  # never back
    assert not verdicts["new_pod_calls"].passed and verdicts["new_pod_calls"].value == 0
