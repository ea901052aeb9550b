"""The chaos extension without processes: discovery as Chaos Toolkit sees it, configuration
keys, safety (allowlist, dry-run plan), flood bounds, chaos events, and the probes' figures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from loadgate.chaos import figures, session
from loadgate.chaos.flood import Flood
from loadgate.chaos.gameday import ensure_control, load, runtime_settings
from loadgate.chaos.platforms import build_platform, settings_from
from loadgate.chaos.probes import summarize_scaled_object
from loadgate.chaos.safety import describe_plan, ensure_chaos_allowed
from loadgate.errors import UserError
from loadgate.schema import SAMPLE_COLUMNS

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
ACTIONS = {"kill_pods", "flood_queue", "scale", "restore_replicas", "stop_floods"}
PROBES = {
    "success_rate", "latency_percentile", "rejection_latency", "ready_replicas",
    "replicas_restored", "pod_ready", "scaled_object_status",
}  # fmt: skip


def test_chaoslib_discovers_every_activity_with_its_docs():
    from chaoslib.discovery.discover import discover

    d = discover("loadgate", discover_system=False, download_and_install=False)
    found = {(a["type"], a["name"]) for a in d["activities"]}
    assert found == {("action", n) for n in ACTIONS} | {("probe", n) for n in PROBES}
    for a in d["activities"]:
        assert a["doc"] and len(a["doc"]) > 40, a["name"]


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_experiments_are_valid_and_roll_back_always(path):
    exp = load(path)
    assert runtime_settings(exp)["runtime"]["rollbacks"]["strategy"] == "always"
    assert exp["steady-state-hypothesis"]["probes"] and exp["method"] and exp["rollbacks"]
    modules = {c["provider"]["module"] for c in exp["controls"]}
    assert modules == {"loadgate.chaos.control"}
    assert exp["configuration"]["loadgate_platform"]["key"] == "LOADGATE_PLATFORM"


def test_gameday_adds_the_control_when_missing():
    exp: dict = {"title": "x"}
    ensure_control(exp)
    ensure_control(exp)
    assert [c["provider"]["module"] for c in exp["controls"]] == ["loadgate.chaos.control"]


def test_configuration_keys_are_checked():
    s = settings_from({"loadgate_platform": "twin", "loadgate_out": "", "other": 1})
    assert s.platform == "twin" and s.out == ""
    with pytest.raises(UserError, match="configuration.loadgate_platfrom: unknown key"):
        settings_from({"loadgate_platfrom": "twin"})
    with pytest.raises(UserError, match="platform"):
        settings_from({"loadgate_platform": "docker"})


class FakeKube:
    name = "kubernetes"

    def __init__(self, context, namespace, allowed):
        self.context, self.namespace, self.allowed = context, namespace, allowed


def test_kubernetes_chaos_needs_context_and_namespace_in_the_allowlist():
    ensure_chaos_allowed(FakeKube("kind-lg", "loadgate", ["kind-lg/loadgate"]))
    ensure_chaos_allowed(FakeKube("staging", "ml", ["staging/*"]))
    for ctx, ns, allowed in [
        ("prod", "loadgate", ["kind-lg/loadgate"]),  # wrong context
        ("kind-lg", "default", ["kind-lg/loadgate"]),  # wrong namespace
        ("kind-lg", "loadgate", []),  # nothing allowed by default
    ]:
        with pytest.raises(UserError, match="chaos refused"):
            ensure_chaos_allowed(FakeKube(ctx, ns, allowed))


def test_kubernetes_without_a_kubernetes_block_is_refused(tmp_path):
    cfg = tmp_path / "loadgate.yaml"
    cfg.write_text("stack: twin\n")
    s = settings_from({"loadgate_platform": "kubernetes", "loadgate_config": str(cfg)})
    with pytest.raises(UserError, match="no 'kubernetes:' block"):
        build_platform(s)


def test_dry_run_plan_shows_substituted_arguments_and_rollbacks():
    exp = load(EXPERIMENTS / "kill-model-pod.yaml")
    lines = describe_plan(exp, {"recover_s": 42.0, "window_s": 7.0, "settle_s": 1.0})
    text = "\n".join(lines)
    assert "kill_pods(count=1, graceful=False)" in text
    assert "replicas_restored(timeout_s=42.0)" in text and "window_s=7.0" in text
    assert "rollbacks (strategy always)" in text and "restore_replicas" in text


def test_floods_are_bounded_in_count_and_time():
    for requests, duration in [(0, 1), (5001, 1), (10, 0), (10, 601)]:
        with pytest.raises(UserError):
            Flood("127.0.0.1:1", requests, duration)


def test_chaos_events_go_to_memory_and_to_the_run_directory(tmp_path):
    session.reset(tmp_path)
    try:
        session.mark("kill_pods", pod="p-1", signal="SIGKILL")
        session.mark("method_end", pod=None)
        rows = session.read_events(tmp_path)
        assert [r["metric"] for r in rows] == ["kill_pods", "method_end"]
        assert json.loads(rows[0]["labels"]) == {"pod": "p-1", "signal": "SIGKILL"}
        assert rows[0]["source"] == "chaos" and session.current().events == rows
    finally:
        session.reset()


def rows(specs):
    out = []
    for intended, lat, status, cls in specs:
        out.append({
            "intended": intended, "start": intended, "first_byte": intended + lat / 2,
            "end": intended + lat, "cls": cls, "model": "m", "status": status, "served_by": "",
            "tokens": 1, "bytes": 1, "phase": "steady", "worker": "w", "request_id": "", "error": "",
        })  # fmt: skip
    return pd.DataFrame(out)[SAMPLE_COLUMNS]


def test_probe_figures_over_a_window():
    df = rows([
        (90.0, 0.1, "OK", "llm-short"),  # outside the window
        (96.0, 0.2, "OK", "llm-short"),
        (97.0, 0.4, "UNAVAILABLE", "llm-short"),
        (98.0, 0.1, "OK", "cv"),
        (99.0, 0.1, "CANCELLED", "llm-short"),  # the run's end, not the stack's
        (99.5, 0.0, "DROPPED", "llm-short"),
    ])  # fmt: skip
    w = figures.window_rows(df, now=100.0, window_s=5.0, traffic_class="llm-short")
    assert len(w) == 2
    assert figures.success_rate(w) == 0.5
    assert figures.percentile_ms(w, 99) == pytest.approx(200.0)
    assert figures.percentile_ms(w, 50, "ttft") == pytest.approx(100.0)
    assert figures.rejection_ms(w, 99) == pytest.approx(400.0)
    assert figures.rejection_ms(w[w["status"] == "OK"], 99) == 0.0
    assert math.isnan(figures.success_rate(w.iloc[0:0]))
    with pytest.raises(ValueError):
        figures.percentile_ms(w, 99, "tpot")


def test_scaled_object_summary_for_keda_and_for_the_twin():
    keda = {
        "metadata": {"name": "modelserver"},
        "spec": {"scaleTargetRef": {"name": "modelserver"}, "minReplicaCount": 3,
                 "maxReplicaCount": 6},
        "status": {"conditions": [{"type": "Ready", "status": "True"},
                                  {"type": "Active", "status": "False"}]},
    }  # fmt: skip
    assert summarize_scaled_object(keda) == {
        "name": "modelserver", "min_replicas": 3, "max_replicas": 6, "ready": True,
        "active": False,
    }  # fmt: skip
    twin = {
        "spec": {"name": "modelserver", "min_replicas": 3, "max_replicas": 6,
                 "activation_threshold": 0.0},
        "status": {"active": True, "last_decision": {"metric_value": 12.0}},
    }  # fmt: skip
    s = summarize_scaled_object(twin)
    assert s["ready"] and s["active"] and s["max_replicas"] == 6
    assert not summarize_scaled_object({"spec": None, "status": {"active": False}})["ready"]


def test_gameday_dry_run_prints_the_plan_and_starts_nothing(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from loadgate.cli import cli

    monkeypatch.setenv("LOADGATE_TWIN_STATE_DIR", str(tmp_path / "no-twin"))
    monkeypatch.setenv("LOADGATE_CHAOS_RECOVER_S", "42")
    r = CliRunner().invoke(cli, ["gameday", str(EXPERIMENTS / "kill-model-pod.yaml"), "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "nothing will be started" in r.output
    assert "none running: gameday would boot one" in r.output
    assert "kill_pods(count=1, graceful=False)" in r.output and "timeout_s=42.0" in r.output
    assert not (tmp_path / "no-twin").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.yaml"], "missing.yaml: no such experiment file"),
        (["EXP", "--var", "novalue"], "--var 'novalue': expected KEY=VALUE"),
        (["EXP", "--dry-run", "--var", "loadgate_platfrom=twin"], "--var loadgate_platfrom: not a"),
    ],
)
def test_gameday_user_errors_are_one_line(args, message, tmp_path):
    from click.testing import CliRunner

    from loadgate.cli import cli

    args = [str(EXPERIMENTS / "flood-queue.yaml") if a == "EXP" else a for a in args]
    r = CliRunner().invoke(cli, ["gameday", *args])
    assert isinstance(r.exception, UserError), r.output
    assert message in str(r.exception) and "\n" not in str(r.exception)


def test_a_broken_experiment_is_a_user_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("description: no title\nmethod: []\n")
    with pytest.raises(UserError, match="invalid experiment"):
        load(bad)
