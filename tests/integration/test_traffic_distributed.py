"""Master and workers as on separate machines: `loadgate run --expect-workers 2` and two
`loadgate worker` processes started on their own (not forked by the master), all real Locust.

Checks what issue 4 asks of distributed runs: the master writes one samples file with both
workers' rows, sent == rows, and a worker that is stopped mid-run still ships every row it had
(its in-flight calls end CANCELLED) while the summary marks the run invalid, naming it. A worker
started with another scenario file sends nothing and is named too.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from loadgate.procs import free_port, stop, wait_until
from loadgate.schema import read_samples
from loadgate.traffic.live import read_live

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

SCENARIO = """
name: distributed
arrival: constant
classes:
  - {name: llm, model: llm, kind: llm_stream, max_tokens: 50, weight: 1}
  - {name: llm-long, model: llm, kind: llm_stream, max_tokens: 2000, weight: 1}
  - {name: cv, model: cv, kind: cv, weight: 2}
phases:
  - {name: steady, duration_s: %s, rate: 20}
"""


def loadgate(*args: str, **kw) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "loadgate.cli", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def start_master(modelserver, scenario, out, workers: int):
    port = free_port()
    master = loadgate(
        "run",
        str(scenario),
        "--target",
        modelserver.grpc_target,
        "--out",
        str(out),
        "--expect-workers",
        str(workers),
        "--master-bind",
        f"127.0.0.1:{port}",
        "-o",
        "json",
    )
    return master, f"127.0.0.1:{port}"


def finish(master, workers, code: int = 0) -> tuple[dict, str]:
    try:
        stdout, stderr = master.communicate(timeout=100)
        for w in workers:
            w.communicate(timeout=30)
    finally:
        for p in (master, *workers):
            stop(p)
    assert master.returncode == code, stderr
    return json.loads(stdout), stderr


def test_worker_stopped_mid_run_ships_every_row_and_is_named(modelserver, tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO % 12)
    out = tmp_path / "run"
    master, addr = start_master(modelserver, scenario, out, workers=2)
    a = loadgate("worker", str(scenario), "--master", addr)
    b = loadgate("worker", str(scenario), "--master", addr)
    # b stops (SIGTERM, as when its machine is shut down) once load flows and long streams are
    # in flight; a runs the whole schedule.
    wait_until(lambda: len(read_live(out)) >= 40, 60, what="rows from both workers")
    b.send_signal(signal.SIGTERM)
    summary, stderr = finish(master, [a, b], code=3)  # INVALID: a generator stopped early

    df = read_samples(out / "samples.parquet")
    generator = json.loads((out / "generator.json").read_text())
    workers = generator["workers"]
    assert len(workers) == 2 and set(df["worker"]) == set(workers)
    assert len(df) == sum(w["sent"] for w in workers.values())  # nothing lost
    assert all(w["rows"] == w["sent"] and w["unfinished"] == 0 for w in workers.values())
    cut = [name for name, w in workers.items() if not w["completed"]]
    assert len(cut) == 1  # b's schedule was cut short; a walked its whole one
    assert (df[df["worker"] == cut[0]]["status"] == "CANCELLED").sum() >= 1  # long streams
    # a's stream alone: ~half of the 240 arrivals; the dead worker's share is not taken over
    whole = df[df["worker"] != cut[0]]
    assert len(whole) == 120
    g = summary["generator"]
    assert not g["valid"] and g["processes"] == 2
    assert any("stopped before the end of their schedule" in r and cut[0] in r
               for r in g["invalid_reasons"])  # fmt: skip
    assert "Traceback" not in stderr


# the summary's side is unit-tested (test_traffic_summary.py); end to end in `make test-long`
@pytest.mark.long
def test_worker_with_another_scenario_sends_nothing_and_is_named(modelserver, tmp_path):
    scenario, other = tmp_path / "s.yaml", tmp_path / "other.yaml"
    scenario.write_text(SCENARIO % 4)
    other.write_text(SCENARIO % 5)
    out = tmp_path / "run"
    master, addr = start_master(modelserver, scenario, out, workers=2)
    good = loadgate("worker", str(scenario), "--master", addr)
    stray = loadgate("worker", str(other), "--master", addr)
    summary, _ = finish(master, [good, stray], code=3)  # INVALID: a worker sent nothing
    g = summary["generator"]
    assert not g["valid"]
    assert any("different scenario file" in r for r in g["invalid_reasons"])
    df = read_samples(out / "samples.parquet")
    assert df["worker"].nunique() == 1 and len(df) == 40  # the good worker's half of 80


def test_worker_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nclasses: [}")
    p = loadgate("worker", str(bad), "--master", "127.0.0.1:5557")
    _, err = p.communicate(timeout=30)
    assert p.returncode == 2 and err.startswith("loadgate: error:") and "Traceback" not in err
    good = tmp_path / "good.yaml"
    good.write_text(SCENARIO % 4)
    p = loadgate("worker", str(good), "--master", "127.0.0.1:x")
    _, err = p.communicate(timeout=30)
    assert p.returncode == 2 and err.count("\n") == 1
