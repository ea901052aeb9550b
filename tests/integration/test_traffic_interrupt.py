"""`loadgate run` end to end against one model server: progress, summary table, files, and a
clean Ctrl-C (SIGINT) that still writes every row."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from loadgate.procs import stop, wait_until
from loadgate.schema import read_samples

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SCENARIO = """
name: cli
arrival: poisson
classes:
  - {name: llm-long, model: llm, kind: llm_stream, max_tokens: 2000, weight: 1}
  - {name: cv, model: cv, kind: cv, weight: 3}
phases:
  - {name: steady, duration_s: 60, rate: 10}
"""


def test_ctrl_c_stops_cleanly_and_writes_the_samples(modelserver, tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO)
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "loadgate.cli",
        "run",
        str(scenario),
        "--target",
        modelserver.grpc_target,
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Rows on disk means load is flowing; then interrupt as a terminal's Ctrl-C would.
        wait_until(lambda: len(list((out / "live").glob("chunk-*"))) >= 3, 60, what="live rows")
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        stop(proc)
    assert proc.returncode == 130, stderr  # INTERRUPTED (loadgate.exits)
    assert "SIGINT: stopping" in stderr and "phase steady" in stderr  # progress lines
    assert "llm-long" in stdout and "generator:" in stdout and "Traceback" not in stderr
    assert "run: INTERRUPTED" in stdout  # the table says so, not only the JSON
    df = read_samples(out / "samples.parquet")
    assert (df["status"] == "CANCELLED").sum() >= 1  # long streams were in flight
    assert set(df["status"]) <= {"OK", "CANCELLED"}
    assert (out / "locust.html").exists() and (out / "traffic_summary.json").exists()
    assert not (out / "INCOMPLETE").exists()  # every file was written: the run is complete


def test_a_run_whose_every_call_fails_exits_1_and_names_the_status(modelserver, tmp_path):
    scenario = tmp_path / "typo.yaml"
    scenario.write_text(
        "name: typo\narrival: constant\n"
        "classes: [{name: cv, model: no-such-model, kind: cv}]\n"
        "phases: [{name: steady, duration_s: 2, rate: 5}]\n"
    )
    cmd = [sys.executable, "-m", "loadgate.cli", "run", str(scenario)]
    cmd += ["--target", modelserver.grpc_target, "--out", str(tmp_path / "run")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 1, proc.stderr  # the stack failed every call: FAIL, not PASS
    assert "run: FAIL" in proc.stdout and "NOT_FOUND" in proc.stdout, proc.stdout
    assert "Traceback" not in proc.stderr
