"""`loadgate compare` and `loadgate baseline` on synthetic run directories: verdicts per figure,
exit codes, JSON, the HTML page, and one clear line for bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from synthetic_runs import SCENARIO, write_run

from loadgate.cli import main
from loadgate.regression.compare import Options, compare_runs
from loadgate.regression.result import CapacityResult, Probe, write_result
from loadgate.regression.rundir import read_side
from loadgate.traffic.stacks import StackInfo


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(args)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def verdicts(out: str) -> dict[str, str]:
    data = json.loads(out)
    return {f"{r['scope']}/{r['figure']}": r["verdict"] for r in data["rows"]}


@pytest.fixture
def rng():
    return np.random.default_rng(20)


def test_single_runs_aa_no_change_and_slowed_regressed(tmp_path, rng, capsys):
    a = write_run(tmp_path / "a", rng)
    b = write_run(tmp_path / "b", rng)
    slow = write_run(tmp_path / "slow", rng, slow=1.25)
    code, out, _ = run_cli(["compare", str(a), str(b), "-o", "json"], capsys)
    assert code == 0
    v = verdicts(out)
    assert v["llm/ttft_p50_ms"] == v["llm/itl_p50_ms"] == v["cv/latency_p50_ms"] == "no change"
    assert "regressed" not in v.values() and "improved" not in v.values()
    code, out, _ = run_cli(["compare", str(a), str(slow), "-o", "json"], capsys)
    assert code == 1  # ttft_p99 and itl_p99 gate by default
    v = verdicts(out)
    assert v["llm/ttft_p50_ms"] == v["llm/ttft_p99_ms"] == v["llm/itl_p99_ms"] == "regressed"
    assert v["cv/latency_p50_ms"] == "no change"
    data = json.loads(out)
    row = next(r for r in data["rows"] if r["figure"] == "ttft_p50_ms")
    assert row["method"] == "requests" and row["change"] == pytest.approx(0.25, abs=0.06)
    assert row["change_lo"] < row["change"] < row["change_hi"]


def test_table_marks_no_change_and_says_it_is_one_run(tmp_path, rng, capsys):
    a, b = write_run(tmp_path / "a", rng), write_run(tmp_path / "b", rng, slow=1.25)
    code, out, _ = run_cli(["compare", str(a), str(b)], capsys)
    assert code == 1
    assert "1 run per side" in out and "llm/ttft_p99_ms" in out.splitlines()[-1]
    assert out.splitlines()[-1].startswith("REGRESSED: ")
    assert "cv latency_p50_ms" in out and "  ~" in out


def test_many_runs_per_side_use_runs_and_too_few_say_so(tmp_path, rng, capsys):
    for i in range(5):
        write_run(tmp_path / "base" / f"run-{i}", rng, seconds=20)
        write_run(tmp_path / "cand" / f"run-{i}", rng, seconds=20, slow=1.25)
    code, out, _ = run_cli(
        ["compare", str(tmp_path / "base"), str(tmp_path / "cand"), "-o", "json"], capsys
    )
    data = json.loads(out)
    ttft = next(r for r in data["rows"] if (r["scope"], r["figure"]) == ("llm", "ttft_p50_ms"))
    assert ttft["method"] == "runs" and ttft["baseline"]["runs"] == 5
    assert ttft["verdict"] == "regressed" and code == 1
    three = ",".join(str(tmp_path / "base" / f"run-{i}") for i in range(3))
    three_b = ",".join(str(tmp_path / "cand" / f"run-{i}") for i in range(3))
    code, out, _ = run_cli(["compare", three, three_b, "-o", "json"], capsys)
    assert code == 0
    assert set(verdicts(out).values()) == {"not enough samples"}


def test_different_scenarios_are_not_comparable(tmp_path, rng, capsys):
    other = {**SCENARIO, "phases": [{"name": "steady", "duration_s": 60, "rate": 99}]}
    a = write_run(tmp_path / "a", rng)
    b = write_run(tmp_path / "b", rng, scenario=other)
    code, out, err = run_cli(["compare", str(a), str(b)], capsys)
    assert code == 2 and "NOT COMPARABLE" in out
    assert err.startswith("loadgate: error: not comparable") and err.count("\n") == 1
    seeded = {**SCENARIO, "generator": {"seed": 7}, "description": "another text"}
    c = write_run(tmp_path / "c", rng, scenario=seeded)
    assert run_cli(["compare", str(a), str(c)], capsys)[0] == 0  # seed and text do not matter
    d = write_run(tmp_path / "d", rng, stack={"kind": "twin", "target": "t", "time_scale": 0.2})
    assert run_cli(["compare", str(a), str(d)], capsys)[0] == 2


def test_bad_input_is_one_line_and_exit_2(tmp_path, rng, capsys):
    a = write_run(tmp_path / "a", rng)
    cases = {
        "missing": tmp_path / "nope",
        "empty": tmp_path / "empty",
        "incomplete": tmp_path / "incomplete",
        "badyaml": tmp_path / "badyaml",
    }
    cases["empty"].mkdir()
    write_run(cases["incomplete"], rng)
    (cases["incomplete"] / "samples.parquet").unlink()
    write_run(cases["badyaml"], rng)
    (cases["badyaml"] / "scenario.yaml").write_text("name: x\nclasses: [\n")
    expect = {
        "missing": "no such run directory or baseline",
        "empty": "not a run directory",
        "incomplete": "incomplete run directory: no samples.parquet",
        "badyaml": "malformed YAML",
    }
    for name, path in cases.items():
        code, _, err = run_cli(["compare", str(a), str(path)], capsys)
        assert code == 2, name
        assert err.startswith("loadgate: error: ") and expect[name] in err, err
        assert err.count("\n") == 1 and "Traceback" not in err
    code, _, err = run_cli(["compare", str(a), str(a), "--floor", "-3"], capsys)
    assert code == 2 and err.startswith("loadgate: error: ")


def test_invalid_runs_are_left_out_with_a_warning(tmp_path, rng, capsys):
    write_run(tmp_path / "base" / "ok", rng)
    write_run(tmp_path / "base" / "bad", rng, valid=False)
    b = write_run(tmp_path / "b", rng)
    code, out, _ = run_cli(["compare", str(tmp_path / "base"), str(b)], capsys)
    assert code == 0 and "left out, INVALID (send lag p99" in out
    code, _, err = run_cli(["compare", str(tmp_path / "base" / "bad"), str(b)], capsys)
    assert code == 2 and "no valid run" in err


def test_phase_selection(tmp_path, rng, capsys):
    a, b = write_run(tmp_path / "a", rng), write_run(tmp_path / "b", rng)
    assert run_cli(["compare", str(a), str(b), "--phase", "steady"], capsys)[0] == 0
    code, _, err = run_cli(["compare", str(a), str(b), "--phase", "flood"], capsys)
    assert code == 2 and "no phase flood (phases: steady)" in err


def test_gating_globs_choose_what_fails_the_command(tmp_path, rng, capsys):
    a, slow = write_run(tmp_path / "a", rng), write_run(tmp_path / "s", rng, slow=1.25)
    assert run_cli(["compare", str(a), str(slow), "--gating", "cv/*"], capsys)[0] == 0
    assert run_cli(["compare", str(a), str(slow), "--gating", "llm/ttft_p50_ms"], capsys)[0] == 1
    # a floor above the change turns the regression into no change
    assert run_cli(["compare", str(a), str(slow), "--floor", "40"], capsys)[0] == 0


def test_html_page_overlays_distributions_offline(tmp_path, rng, capsys):
    a, b = write_run(tmp_path / "a", rng), write_run(tmp_path / "b", rng, slow=1.25)
    page = tmp_path / "cmp.html"
    run_cli(["compare", str(a), str(b), "--html", str(page)], capsys)
    html = page.read_text()
    assert 'id="figures"' in html and "llm: distributions" in html
    assert html.count("data:image/png;base64,") == 2  # one CDF panel per class
    assert "http://" not in html and "https://" not in html and "<script" not in html


def capacity_result(capacity: float, lo: float, hi: float) -> CapacityResult:
    stack = StackInfo(kind="twin", target="t", time_scale=0.1)
    probes = [
        Probe(load=x, attempts=1, verdict=v, run_dirs=[], measured_s=15.0)
        for x, v in ((lo, "pass"), (hi, "fail"))
    ]
    return CapacityResult(
        scenario="synthetic",
        identity="synthetic@x on twin time_scale=0.1",
        stack=stack,
        load_kind="rate",
        unit="calls/s",
        capacity=capacity,
        lo=lo,
        hi=hi,
        tolerance=0.1,
        complete=True,
        probes=probes,
        started=0.0,
        finished=60.0,
    )


def test_capacity_regressed_when_the_searches_intervals_part(tmp_path, capsys):
    for name, r in {
        "base": capacity_result(46, 45, 50),
        "same": capacity_result(44, 42, 47),
        "slow": capacity_result(36, 34, 40),
    }.items():
        (tmp_path / name).mkdir()
        write_result(tmp_path / name, r)
    code, out, _ = run_cli(
        ["compare", str(tmp_path / "base"), str(tmp_path / "same"), "-o", "json"], capsys
    )
    assert code == 0 and verdicts(out) == {"capacity/capacity": "no change"}
    code, out, _ = run_cli(
        ["compare", str(tmp_path / "base"), str(tmp_path / "slow"), "-o", "json"], capsys
    )
    assert code == 1 and verdicts(out) == {"capacity/capacity": "regressed"}


def test_baseline_save_list_and_compare_by_name(tmp_path, rng, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for i in range(2):
        write_run(tmp_path / "runs" / f"r{i}", rng)
    code, out, _ = run_cli(["baseline", "save", "rel-1.0", "runs"], capsys)
    assert code == 0 and "2 run(s)" in out
    saved = json.loads((tmp_path / "baselines" / "rel-1.0" / "baseline.json").read_text())
    assert [r["kind"] for r in saved["runs"]] == ["traffic", "traffic"]
    assert run_cli(["baseline", "save", "rel-1.0", "runs"], capsys)[0] == 2  # exists
    assert run_cli(["baseline", "save", "rel-1.0", "runs", "--force"], capsys)[0] == 0
    assert "rel-1.0  2 run(s)" in run_cli(["baseline", "list"], capsys)[1]
    cand = write_run(tmp_path / "cand", rng)
    code, out, _ = run_cli(["compare", "rel-1.0", str(cand)], capsys)
    assert code == 0 and "not enough samples" in out  # 2 runs vs 1: no verdict
    code, _, err = run_cli(["baseline", "save", "../up", "runs"], capsys)
    assert code == 2 and "use letters, digits" in err


def test_compare_runs_api_reports_identities(tmp_path, rng):
    base, _ = read_side([write_run(tmp_path / "a", rng)])
    cand, _ = read_side([write_run(tmp_path / "b", rng)])
    c = compare_runs(base, cand, Options())
    assert c.comparable and c.baseline_identity.startswith("synthetic@")
    assert c.baseline_identity.endswith("on twin time_scale=0.1")


def test_gate_figures_take_their_direction_from_the_threshold(tmp_path, capsys):
    from loadgate.judge import check
    from loadgate.report import Summary, write_summary

    rng = np.random.default_rng(21)
    for side, imbalance, rejected in (("base", 1.3, 0.20), ("cand", 1.5, 0.10)):
        for i in range(5):
            gates = [
                check("balance", "imbalance_p95", imbalance * rng.lognormal(0, 0.02), "<=", 1.6),
                check("fail_fast", "rejected_share", rejected * rng.lognormal(0, 0.02), ">=", 0.05),
                check("fail_fast", "deadline_exceeded", 0.0, "==", 0.0),
            ]
            write_summary(
                tmp_path / side / f"g{i}",
                Summary(
                    run_id=f"{side}{i}",
                    scenario="gates: balance, fail_fast",
                    stack="twin",
                    gates=gates,
                ),
            )
    code, out, _ = run_cli(
        ["compare", str(tmp_path / "base"), str(tmp_path / "cand"), "-o", "json"], capsys
    )
    v = verdicts(out)
    assert v == {
        "gate:balance/imbalance_p95": "regressed",
        "gate:fail_fast/rejected_share": "regressed",
    }
    assert code == 0  # gate figures do not gate unless chosen
    args = ["compare", str(tmp_path / "base"), str(tmp_path / "cand"), "--gating", "gate:*"]
    assert run_cli(args, capsys)[0] == 1


def test_compare_page_draws_both_capacity_curves(tmp_path, capsys):
    for name, r in {
        "base": capacity_result(46, 45, 50),
        "slow": capacity_result(36, 34, 40),
    }.items():
        (tmp_path / name).mkdir()
        write_result(tmp_path / name, r)
    page = tmp_path / "c.html"
    run_cli(
        ["compare", str(tmp_path / "base"), str(tmp_path / "slow"), "--html", str(page)], capsys
    )
    html = page.read_text()
    assert "Capacity curve" in html and html.count("data:image/png;base64,") == 1
