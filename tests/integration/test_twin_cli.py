"""`loadgate twin up --detach / status / down` as a user runs them, and boot failures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from loadgate.errors import UserError
from loadgate.twin.manifests import apply_overrides, load_twin_spec
from loadgate.twin.stack import Twin

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "k8s"


def loadgate(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "loadgate.cli", "twin", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_detached_twin_status_and_down_leaves_no_process(tmp_path):
    up = loadgate(tmp_path, "up", "--detach", "--manifests", str(FIXTURES), "--time-scale", "0.1")
    state_file = tmp_path / ".loadgate" / "twin" / "state.json"
    try:
        assert up.returncode == 0, up.stderr
        assert "gRPC target:" in up.stdout and "control API:" in up.stdout
        assert "starting Envoy 1.40.0" in up.stderr  # progress while booting
        assert "Envoy admin:" in up.stdout
        state = json.loads(state_file.read_text())
        daemon = psutil.Process(state["pid"])
        family = [daemon, *daemon.children(recursive=True)]
        names = " ".join(" ".join(p.cmdline()) for p in family)
        assert "envoy" in names and "--disable-hot-restart" in names
        assert "prometheus" in names and names.count("modelserver") >= 3

        st = loadgate(tmp_path, "status")
        assert st.returncode == 0, st.stderr
        assert "3 ready / 3 desired" in st.stdout
        assert st.stdout.count(" yes ") == 3
        assert st.stdout.count(" healthy ") == 3, "Envoy's own view of each pod"
        js = json.loads(loadgate(tmp_path, "status", "-o", "json").stdout)
        assert {p["envoy_health"] for p in js["pods"]} == {"healthy"}
        assert all(isinstance(p["envoy_rq_active"], int) for p in js["pods"])

        again = loadgate(tmp_path, "up", "--detach", "--manifests", str(FIXTURES))
        assert again.returncode == 2 and "already running" in again.stderr
    finally:
        down = loadgate(tmp_path, "down")
    assert down.returncode == 0, down.stderr
    gone, alive = psutil.wait_procs(family, timeout=5)
    assert not alive, [p.cmdline() for p in alive]
    assert not state_file.exists()
    # nothing running: status and down say so alike, exit 0 (json: running false)
    for cmd in (("status",), ("down",)):
        r = loadgate(tmp_path, *cmd)
        assert r.returncode == 0 and r.stderr.startswith("loadgate: no twin running"), cmd
    assert json.loads(loadgate(tmp_path, "status", "-o", "json").stdout)["running"] is False


def test_pod_crashing_at_boot_is_one_clear_error_and_nothing_leaks(tmp_path):
    spec = apply_overrides(load_twin_spec(FIXTURES), replicas=2, no_autoscaler=True)
    crash = [sys.executable, "-c", "import sys; print('model weights missing'); sys.exit(3)"]
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    with pytest.raises(UserError) as err:
        Twin.up(spec, tmp_path, pod_command=lambda name, g, h: crash)
    msg = str(err.value)
    assert "exited during boot" in msg and "model weights missing" in msg
    assert "\n" not in msg
    leaked = [p for p in me.children(recursive=True) if p.pid not in before and p.is_running()]
    leaked = [p for p in leaked if p.status() != psutil.STATUS_ZOMBIE]
    assert not leaked, [p.cmdline() for p in leaked]


def test_bad_override_is_a_user_error(tmp_path):
    r = loadgate(tmp_path, "up", "--manifests", str(FIXTURES), "--replicas", "-1")
    assert r.returncode == 2
    assert r.stderr.startswith("loadgate: error:") and "Traceback" not in r.stderr


def test_children_die_with_a_killed_twin(tmp_path):
    up = loadgate(
        tmp_path, "up", "--detach", "--manifests", str(FIXTURES), "--no-autoscaler",
        "--replicas", "2",
    )  # fmt: skip
    assert up.returncode == 0, up.stderr
    state = json.loads((tmp_path / ".loadgate" / "twin" / "state.json").read_text())
    daemon = psutil.Process(state["pid"])
    children = daemon.children(recursive=True)
    assert len(children) >= 4  # envoy, prometheus, 2 pods
    assert any("envoy" in " ".join(p.cmdline()) for p in children)
    daemon.kill()  # no chance to clean up: PDEATHSIG must do it
    gone, alive = psutil.wait_procs(children, timeout=20)
    for p in alive:  # leave nothing behind even when the test fails
        p.kill()
    assert not alive, [p.cmdline() for p in alive]
    assert loadgate(tmp_path, "down").returncode == 0  # stale state is cleaned up
