"""The chaos extension end to end on real twins: every experiment in experiments/ completes
without deviating on the reference twin; a twin that never replaces killed pods makes
kill-model-pod deviate; Ctrl-C during an experiment still rolls back and leaves no load.

One shared twin (time_scale 0.1) serves the four experiments and the interruption test;
durations are shortened through the experiments' environment-backed configuration.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loadgate.chaos import session
from loadgate.chaos.gameday import run_gameday
from loadgate.judge.names import CHAOS_SOURCE
from loadgate.platform.base import Replicas
from loadgate.procs import pid_alive, wait_until
from loadgate.schema import read_samples, read_timeline
from loadgate.twin.manifests import apply_overrides, load_twin_spec
from loadgate.twin.stack import Twin

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures" / "k8s"
EXPERIMENTS = ROOT / "experiments"
SHORT = {
    "LOADGATE_CHAOS_WINDOW_S": "5",
    "LOADGATE_CHAOS_RECOVER_S": "30",
    "LOADGATE_CHAOS_SETTLE_S": "6",
    "LOADGATE_CHAOS_FLOOD_S": "5",
    "LOADGATE_CHAOS_BURST_S": "20",
    "LOADGATE_CHAOS_SCENARIO": str(EXPERIMENTS / "load" / "steady.yaml"),
}


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    spec = apply_overrides(load_twin_spec(FIXTURES), time_scale=0.1)
    with Twin.up(spec, tmp_path_factory.mktemp("chaos-twin")) as t:
        yield t


@pytest.fixture
def short_env(monkeypatch):
    for k, v in SHORT.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("LOADGATE_CHAOS_OUT", raising=False)
    yield
    session.reset()


def chaos_run(experiment: Path, out: Path, control_url: str) -> dict:
    """`chaos run EXPERIMENT` in its own process, the twin named by LOADGATE_CONTROL_URL."""
    chaos = Path(sys.executable).with_name("chaos")
    env = {**os.environ, "LOADGATE_CONTROL_URL": control_url, "LOADGATE_CHAOS_OUT": str(out)}
    journal = out.parent / f"{out.name}-journal.json"
    cmd = [str(chaos), "--log-file", str(out.parent / "chaos.log"), "run"]
    cmd += ["--journal-path", str(journal), str(experiment)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=170)
    assert journal.exists(), proc.stderr[-2000:]
    return json.loads(journal.read_text())


def _events(out: Path) -> list[str]:
    tl = read_timeline(out / "timeline.parquet")
    return list(tl[tl["source"] == CHAOS_SOURCE]["metric"])


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    "name, fault",
    [
        ("kill-model-pod", "kill_pods"),
        ("readiness-dropout", "flood_start"),
        # their mechanisms are the fail_fast and scale_up gates' (test_gate_sensitivity.py):
        # `make test-long` runs these two experiments end to end
        pytest.param("flood-queue", "flood_start", marks=pytest.mark.long),
        pytest.param("scale-up-burst", "flood_start", marks=pytest.mark.long),
    ],
)
def test_experiment_holds_on_the_reference_twin(twin, short_env, tmp_path, name, fault):
    plat = twin.platform()
    # start each experiment from the Deployment's resting size (an earlier one may have scaled it)
    wait_until(lambda: plat.replicas() == Replicas(3, 3), 90, 0.2, "the twin back to 3 replicas")
    spec_before = plat.replicas().spec
    out = tmp_path / name
    if name == "kill-model-pod":  # as a user runs it: `chaos run` after `loadgate twin up`
        j = chaos_run(EXPERIMENTS / f"{name}.yaml", out, twin.control_url)
    else:
        result = run_gameday(
            EXPERIMENTS / f"{name}.yaml", out, overrides={"loadgate_control_url": twin.control_url}
        )
        j = result.journal
        assert (out / "report.html").exists()
    failed = [r["activity"]["name"] for r in j.get("run", []) if r["status"] != "succeeded"]
    assert (j["status"], j["deviated"]) == ("completed", False), (j["steady_states"], failed)
    assert not failed and all(r["status"] == "succeeded" for r in j["rollbacks"])
    assert (out / "journal.json").exists()
    events = _events(out)
    assert {"method_start", fault, "method_end", "experiment_end"} <= set(events)
    samples = read_samples(out / "samples.parquet")
    assert {"llm-short", "cv"} <= set(samples["cls"]) and (samples["status"] == "OK").any()
    assert not pid_alive(json.loads((out / "load.json").read_text())["pid"])
    if name == "kill-model-pod":
        r = twin.platform().replicas()
        assert r.ready >= r.spec == spec_before  # back to its replica count
    if name == "readiness-dropout":
        outputs = {x["activity"]["name"]: x["output"] for x in j["run"]}
        assert outputs["flooded-pod-not-ready"] is False  # it did drop out
        assert outputs["flooded-pod-ready-again"] is True


@pytest.mark.timeout(240)
def test_kill_model_pod_deviates_when_pods_are_never_replaced(short_env, tmp_path, monkeypatch):
    monkeypatch.setenv("LOADGATE_CHAOS_RECOVER_S", "6")
    spec = apply_overrides(
        load_twin_spec(FIXTURES), time_scale=0.1, restart_delay=100_000, no_autoscaler=True
    )
    with Twin.up(spec, tmp_path / "sabotaged") as t:
        result = run_gameday(
            EXPERIMENTS / "kill-model-pod.yaml",
            tmp_path / "run",
            overrides={"loadgate_control_url": t.control_url},
        )
    j = result.journal
    assert j["status"] == "completed" and j["deviated"] is True
    after = {p["activity"]["name"]: p for p in j["steady_states"]["after"]["probes"]}
    assert after["all-replicas-ready"]["output"] is False
    assert j["rollbacks"] and j["rollbacks"][0]["status"] == "failed"  # cannot restore either
    assert result.exit_code == 1


@pytest.mark.timeout(180)
def test_ctrl_c_still_rolls_back_and_stops_the_load(twin, tmp_path):
    out = tmp_path / "interrupted"
    env = {**os.environ, **SHORT, "LOADGATE_CHAOS_FLOOD_S": "120"}
    cmd = [sys.executable, "-m", "loadgate.cli", "gameday", str(EXPERIMENTS / "flood-queue.yaml")]
    cmd += ["--out", str(out), "--var", f"loadgate_control_url={twin.control_url}"]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        events = out / session.EVENTS_FILE
        wait_until(
            lambda: events.exists() and "flood_start" in events.read_text(),
            timeout=90,
            what="the flood to start",
        )
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = output.decode(errors="replace")
    assert proc.returncode == 130, text[-2000:]
    j = json.loads((out / "journal.json").read_text())
    assert j["status"] == "interrupted"
    assert [r["activity"]["name"] for r in j["rollbacks"]] == ["stop-floods"]
    assert j["rollbacks"][0]["status"] == "succeeded"
    assert not pid_alive(json.loads((out / "load.json").read_text())["pid"])
    flood = j["rollbacks"][0]["output"][0]
    assert flood["ended"] - flood["started"] < 60  # cut short, not run to its 120 s
    # the flood's calls were cancelled: the pods drain and every replica is ready again
    plat = twin.platform()
    wait_until(lambda: plat.replicas().ready >= plat.replicas().spec, 30, what="pods ready")
