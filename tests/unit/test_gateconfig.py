"""loadgate.yaml: the shipped file is valid; mistakes are one line naming the file and key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from loadgate.errors import UserError
from loadgate.gate import catalogue
from loadgate.gate.config import (
    gate_params,
    load_gate_config,
    parse_overrides,
    with_overrides,
    with_stack_kind,
)
from loadgate.gate.session import format_table
from loadgate.judge.verdict import check

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = {
    "arrival": "constant",
    "classes": ["short"],
    "phases": [{"name": "steady", "duration_s": 5, "rate": 2}],
}


BALANCE_THRESHOLDS = {
    "buckets_min": 15,
    "busiest_pick_share_max": 0.2,
    "queued_while_idle_max": 0.05,
    "imbalance_mean_max": 1.3,
}


def write(tmp_path: Path, data: dict) -> Path:
    p = tmp_path / "loadgate.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def base() -> dict:
    return {
        "classes": [{"name": "short", "model": "llm", "kind": "llm_stream", "max_tokens": 50}],
        "gates": {"balance": {"scenario": copy.deepcopy(SCENARIO), "window": "steady",
                              "thresholds": dict(BALANCE_THRESHOLDS)}},
    }  # fmt: skip


def test_shipped_config_has_every_catalogue_gate_and_its_scenario():
    cfg, scenarios = load_gate_config(ROOT / "loadgate.yaml")
    assert list(cfg.gates) and set(cfg.gates) == set(catalogue.ORDER)
    assert cfg.stack.kind == "twin" and cfg.stack.manifests.is_dir()
    assert scenarios["fail_fast"].open_loop
    assert gate_params(cfg, "readiness", "x").flood.requests == 80
    assert cfg.gates["balance"].thresholds["busiest_pick_share_max"] < 1.0


def test_catalogue_is_the_one_list_of_gates():
    """Every list of gates is the catalogue's: test files exist, markers match, the sensitivity
    test covers each gate, and each figure's direction is in its threshold's name."""
    for g in catalogue.GATES:
        text = (ROOT / "loadtests" / g.test_file).read_text()
        assert f'"{g.name}"' in text and f"def {g.test_name}(" in text, g.name
        for f in g.figures:
            assert f'"{f.name}"' in text, f"{g.test_file} does not check {f.name}"
            assert f.threshold_key.endswith("_max" if f.direction == "<=" else "_min")
        assert g.caught_by <= {f.name for f in g.figures}, g.name
    assert catalogue.ORDER[-1] == "scale_up", "scale-up last: it leaves the stack scaled"


def test_missing_threshold_and_unknown_gate_and_bad_param_are_one_line(tmp_path):
    data = base()
    del data["gates"]["balance"]["thresholds"]["buckets_min"]
    with pytest.raises(UserError, match=r"gates.balance.thresholds: buckets_min not set"):
        load_gate_config(write(tmp_path, data))
    data = base()
    data["gates"]["balanse"] = data["gates"].pop("balance")
    with pytest.raises(UserError, match=r"gates.balanse: unknown gate"):
        load_gate_config(write(tmp_path, data))
    data = base()
    data["gates"]["balance"]["params"] = {"bucket_s": 0}
    with pytest.raises(UserError, match=r"gates.balance.params.bucket_s"):
        load_gate_config(write(tmp_path, data))


def test_inline_scenario_takes_classes_by_name(tmp_path):
    cfg, scenarios = load_gate_config(write(tmp_path, base()))
    sc = scenarios["balance"]
    assert sc.name == "gate-balance" and sc.classes[0].max_tokens == 50


def test_unknown_key_names_file_and_key_path(tmp_path):
    data = base()
    data["gates"]["balance"]["treshold"] = {}
    with pytest.raises(UserError, match=r"loadgate.yaml: gates.balance.treshold: unknown key"):
        load_gate_config(write(tmp_path, data))


def test_misspelt_threshold_of_a_known_gate_is_an_error(tmp_path):
    data = base()
    data["gates"]["balance"]["thresholds"]["imbalance_p59_max"] = 1.5
    with pytest.raises(UserError, match=r"imbalance_p59_max: unknown threshold"):
        load_gate_config(write(tmp_path, data))


def test_unknown_class_name_and_unknown_window_are_errors(tmp_path):
    data = base()
    data["gates"]["balance"]["scenario"]["classes"] = ["shrot"]
    with pytest.raises(UserError, match=r"classes\[0\]: no class 'shrot'"):
        load_gate_config(write(tmp_path, data))
    data = base()
    data["gates"]["balance"]["window"] = "flood"
    with pytest.raises(UserError, match=r"gates.balance.window: no phase 'flood'"):
        load_gate_config(write(tmp_path, data))


def test_bad_scenario_inside_is_named(tmp_path):
    data = base()
    data["gates"]["balance"]["scenario"]["phases"][0]["rate"] = -1
    with pytest.raises(UserError, match=r"gates.balance.scenario: phases\[0\].rate"):
        load_gate_config(write(tmp_path, data))


def test_kubernetes_stack_needs_its_block(tmp_path):
    data = base()
    data["stack"] = {"kind": "kubernetes"}
    with pytest.raises(UserError, match="needs a top-level 'kubernetes:' block"):
        load_gate_config(write(tmp_path, data))


def test_stack_flag_is_checked_like_the_file(tmp_path):
    cfg, _ = load_gate_config(write(tmp_path, base()))
    assert with_stack_kind(cfg, None) is cfg and with_stack_kind(cfg, "twin") is cfg
    with pytest.raises(UserError, match="--stack kubernetes: .*no top-level 'kubernetes:' block"):
        with_stack_kind(cfg, "kubernetes")
    cfg_k = cfg.model_copy(update={"kubernetes": {"grpc_target": "127.0.0.1:1"}})
    assert with_stack_kind(cfg_k, "kubernetes").stack.kind == "kubernetes"


def test_gate_cli_refuses_kubernetes_without_its_block_in_one_line():
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "loadgate.cli", "gate", "--stack", "kubernetes"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "loadgate: error: --stack kubernetes: loadgate.yaml has no top-level 'kubernetes:' block "
        "(grpc_target, context, namespace, allowed; see docs/kubernetes.md)"
    ]


def test_twin_overrides_parse_and_validate(tmp_path):
    cfg, _ = load_gate_config(write(tmp_path, base()))
    assert parse_overrides(["lb=round_robin", "no-autoscaler"]) == {
        "lb": "round_robin",
        "no_autoscaler": True,
    }
    new = with_overrides(cfg, ["lb=round_robin", "max_requests=0"])
    assert new.stack.twin.lb == "round_robin" and new.stack.twin.max_requests == 0
    assert cfg.stack.twin.lb is None  # the original is untouched
    with pytest.raises(UserError, match="unknown"):
        parse_overrides(["lbb=round_robin"])
    with pytest.raises(UserError, match="--twin-override: lb"):
        with_overrides(cfg, ["lb=maglev"])
    with pytest.raises(UserError, match="KEY=VALUE"):
        parse_overrides(["round_robin"])


def test_verdict_table_says_pass_fail_and_invalid():
    vs = [check("balance", "imbalance_p95", 1.2, "<=", 1.6), check("fail_fast", "x", None, ">=", 1)]
    table = format_table(vs)
    assert "PASS" in table.splitlines()[1] and "FAIL" in table.splitlines()[2]


def test_the_commented_kubernetes_example_is_valid_when_uncommented():
    from loadgate.platform.kubernetes import KubernetesConfig

    text = (ROOT / "loadgate.yaml").read_text()
    block = text[text.index("# kubernetes:") :].splitlines()
    body = "\n".join(line[2:] for line in block if line.startswith("#"))
    data = yaml.safe_load(body)["kubernetes"]
    assert KubernetesConfig.model_validate(data).grpc_target


def test_impossible_threshold_values_are_one_line(tmp_path):
    data = base()
    data["gates"]["balance"]["thresholds"]["imbalance_mean_max"] = -1
    with pytest.raises(UserError, match=r"imbalance_mean_max: must be a finite number >= 0"):
        load_gate_config(write(tmp_path, data))
