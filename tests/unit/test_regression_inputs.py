"""Inputs of regression benchmarking: SLOs and capacity settings in the scenario, twin overrides
(decode_slowdown), stack.json; every mistake one line and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadgate.cli import main
from loadgate.errors import UserError
from loadgate.traffic.scenario import load_scenario
from loadgate.traffic.stacks import StackInfo, read_stack_info, twin_overrides, write_stack_info
from loadgate.twin.manifests import apply_overrides, load_twin_spec

REPO = Path(__file__).resolve().parents[2]
BASE = """
name: t
classes:
  - {{name: llm, model: llm, kind: llm_stream{llm}}}
  - {{name: cv, model: cv, kind: cv{cv}}}
phases: [{{name: steady, duration_s: 5, rate: 5}}]
{extra}
"""


def scenario(tmp_path, llm="", cv="", extra=""):
    p = tmp_path / "s.yaml"
    p.write_text(BASE.format(llm=llm, cv=cv, extra=extra))
    return p


def test_shipped_mixed_has_slos_for_every_class_and_a_capacity_block():
    sc = load_scenario(REPO / "loadtests" / "scenarios" / "mixed.yaml")
    assert all(c.slo is not None for c in sc.classes)
    short = next(c for c in sc.classes if c.name == "llm-short")
    assert short.slo.ttft_p95_ms and short.slo.itl_p95_ms and short.slo.error_rate_max == 0.01
    assert sc.capacity.start < sc.capacity.max and sc.capacity.tolerance == 0.1


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"cv": ", slo: {ttft_p99_ms: 100}"}, r"classes\[1\].*slo.ttft_p99_ms: only llm_stream"),
        ({"cv": ", slo: {itl_p95_ms: 100}"}, r"classes\[1\].*slo.itl_p95_ms: only llm_stream"),
        (
            {"llm": ", slo: {error_rate_max: 2}"},
            r"classes\[0\].slo.error_rate_max: .*less than or equal to 1",
        ),
        ({"llm": ", slo: {ttft_p99: 100}"}, r"classes\[0\].slo.ttft_p99: unknown key"),
        ({"llm": ", slo: {latency_p99_ms: -5}"}, r"slo.latency_p99_ms: .*greater than 0"),
        (
            {"extra": "capacity: {start: 50, max: 10}"},
            r"capacity: .*start \(50\) must not exceed max",
        ),
        ({"extra": "capacity: {tolerance: 1.5}"}, r"capacity.tolerance: .*less than 1"),
    ],
)
def test_slo_and_capacity_mistakes_name_the_key(tmp_path, kw, message):
    with pytest.raises(UserError, match=message):
        load_scenario(scenario(tmp_path, **kw))


def test_capacity_without_any_slo_is_refused_before_any_load(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["capacity", str(scenario(tmp_path)), "--target", "127.0.0.1:1"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "no class has an slo" in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as e:
        main(["capacity", str(scenario(tmp_path, cv=", slo: {latency_p99_ms: 5}")), "--start", "0"])
    assert e.value.code == 2 and "capacity + flags: start" in capsys.readouterr().err


def test_decode_slowdown_makes_each_decode_step_longer():
    spec = load_twin_spec(REPO / "fixtures" / "k8s")
    slow = apply_overrides(spec, decode_slowdown=1.25)
    assert slow.modelserver_args[-2:] == ["--decode-step-ms", "25"]  # the server's default is 20
    again = apply_overrides(slow, decode_slowdown=2)  # from the value already given
    assert again.modelserver_args[-2:] == ["--decode-step-ms", "50"]
    with pytest.raises(UserError, match="must be > 0"):
        apply_overrides(spec, decode_slowdown=0)


def test_twin_overrides_parse_like_the_gate_flag():
    o = twin_overrides(["decode_slowdown=1.25", "replicas=1"], 0.1)
    assert (o.decode_slowdown, o.replicas, o.time_scale) == (1.25, 1, 0.1)
    assert twin_overrides(["time_scale=0.2"], 0.1).time_scale == 0.2  # the override wins
    with pytest.raises(UserError, match="--twin-override decode_slow: unknown"):
        twin_overrides(["decode_slow=2"], 0.1)
    with pytest.raises(UserError, match="--twin-override replicas: "):
        twin_overrides(["replicas=many"], 0.1)


def test_stack_record_round_trips_and_names_what_must_match(tmp_path):
    info = StackInfo(kind="twin", target="127.0.0.1:1", time_scale=0.1, overrides={"replicas": 1})
    write_stack_info(tmp_path, info)
    assert read_stack_info(tmp_path) == info
    assert info.identity() == "twin time_scale=0.1"
    assert StackInfo(kind="target", target="x:1").identity() == "target"
    assert read_stack_info(tmp_path / "none") is None
    (tmp_path / "stack.json").write_text("{")
    with pytest.raises(UserError, match="stack.json: not a loadgate stack record"):
        read_stack_info(tmp_path)


def test_kubernetes_stack_from_loadgate_yaml_and_settling_on_its_pods(httpserver, tmp_path):
    # The real kubernetes client against recorded API responses (as tests/unit/test_k8s_platform.py)
    from test_k8s_platform import PODS, recorded, write_kubeconfig

    from loadgate.gate.config import TwinOverrides
    from loadgate.regression.probe import settle
    from loadgate.traffic.stacks import open_stack

    kc = write_kubeconfig(tmp_path / "kc", httpserver.url_for("").rstrip("/"))
    cfg = tmp_path / "loadgate.yaml"
    cfg.write_text(
        f"kubernetes: {{grpc_target: '127.0.0.1:18080', kubeconfig: '{kc}', "
        "selector: app.kubernetes.io/name=modelserver}\n"
    )
    with open_stack(None, tmp_path / "run", TwinOverrides(), print, kubernetes_config=cfg) as st:
        assert st.target == "127.0.0.1:18080" and st.info.kind == "kubernetes"
        assert st.info.identity() == "kubernetes" and "namespace loadgate" in st.info.description
        pods = recorded("pods.json")  # one pod of four is not ready: not settled
        httpserver.expect_oneshot_request(PODS, method="GET").respond_with_json(pods)
        assert settle(st.platform, timeout=0.0) is False
        ready = dict(
            pods, items=[p for p in pods["items"] if p["metadata"]["name"].endswith("4xk2p")]
        )
        httpserver.expect_oneshot_request(PODS, method="GET").respond_with_json(ready)
        assert settle(st.platform, timeout=5.0) is True
    cfg.write_text("stack: {kind: kubernetes}\n")
    with (
        pytest.raises(UserError, match="no 'kubernetes:' block"),
        open_stack(None, tmp_path / "run", TwinOverrides(), print, kubernetes_config=cfg),
    ):
        pass
