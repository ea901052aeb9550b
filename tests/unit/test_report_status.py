"""The report's verdict at a glance: PASS / FAIL / INVALID / INTERRUPTED, FAIL rows first with
what was measured, INVALID rows with their reason, an interrupted run said so."""

import json
import re

from loadgate.judge import check
from loadgate.report import Summary, write_report
from loadgate.report.status import badge, headline, interruption, ordered, verdict_rows
from loadgate.schema import empty_samples, empty_timeline

LAG = "the pods could not keep their simulated time"


def verdicts():
    return [
        check("balance", "busiest_pick_share", 0.11, "<=", 0.2),
        check("fail_fast", "reject_p99_ms", 3.0, "<=", 250, "ms", untrusted=[LAG]),
        check("pod_kill", "failed_elsewhere", 0, "<=", 0),
        check("pod_kill", "p99_recovery_s", 24.0, "<=", 16, "s"),
        check("scale_up", "max_ready", None, ">=", 5),
    ]


def test_fail_first_then_invalid_then_pass_in_gate_order():
    got = [(v.status, v.figure) for v in ordered(verdicts())]
    assert got == [
        ("FAIL", "p99_recovery_s"),
        ("FAIL", "max_ready"),
        ("INVALID", "reject_p99_ms"),
        ("PASS", "busiest_pick_share"),
        ("PASS", "failed_elsewhere"),
    ]
    assert headline(verdicts()) == "2 of 5 figures FAIL, 1 INVALID, 2 PASS"
    assert headline(verdicts()[:1]) == "1 of 1 figure PASS"


def test_rows_say_what_was_measured_against_what_and_why_invalid():
    rows = verdict_rows(verdicts())
    assert rows[0]["css"] == "v-fail"
    assert rows[0]["message"] == "pod_kill: p99_recovery_s measured 24 s, expected <= 16 s"
    assert rows[1]["message"] == "scale_up: max_ready could not be measured, expected >= 5"
    invalid = rows[2]
    assert invalid["css"] == "v-invalid" and invalid["reason"] == LAG
    assert invalid["message"] == "fail_fast: reject_p99_ms measured 3 ms, expected <= 250 ms"


def test_badge_says_interrupted_whatever_the_verdicts():
    failing = Summary(run_id="r", scenario="s", stack="twin", gates=verdicts())
    assert badge(failing, "") == "FAIL"
    assert badge(failing, "the experiment was interrupted") == "INTERRUPTED"
    assert badge(Summary(run_id="r", scenario="s", stack="twin"), "") == "PASS"


def test_interruption_is_read_from_the_run_directory(tmp_path):
    assert interruption(tmp_path) == ""
    # `loadgate run`: its traffic summary
    (tmp_path / "traffic_summary.json").write_text(
        json.dumps({"generator": {"stopped_early": True}})
    )
    assert interruption(tmp_path) == "the load was stopped before the end of its schedule"
    (tmp_path / "traffic_summary.json").write_text(
        json.dumps({"interrupted": True, "generator": {}})
    )
    assert interruption(tmp_path) == "the load was interrupted"
    # a gameday: the experiment always stops its load; only the journal says interrupted
    (tmp_path / "traffic_summary.json").write_text(
        json.dumps({"generator": {"stopped_early": True}})
    )
    (tmp_path / "journal.json").write_text(json.dumps({"status": "completed"}))
    assert interruption(tmp_path) == ""
    (tmp_path / "journal.json").write_text(json.dumps({"status": "interrupted"}))
    assert "interrupted" in interruption(tmp_path)
    # a gate session: each gate's traffic summary
    session = tmp_path / "gate"
    for gate, stopped in (("balance", False), ("fail_fast", True)):
        (session / "gates" / gate).mkdir(parents=True)
        (session / "gates" / gate / "traffic_summary.json").write_text(
            json.dumps({"generator": {"stopped_early": stopped}})
        )
    assert (
        interruption(session) == "gate fail_fast's load was stopped before the end of its schedule"
    )
    (session / "gates" / "fail_fast" / "traffic_summary.json").write_text("{torn")
    assert interruption(session) == ""


def rendered(tmp_path, summary, **kw) -> str:
    return write_report(tmp_path, summary, empty_samples(), empty_timeline(), **kw).read_text()


def test_the_page_puts_the_badge_and_fail_rows_first(tmp_path):
    html = rendered(tmp_path, Summary(run_id="r", scenario="s", stack="twin", gates=verdicts()))
    assert re.search(r'id="badge" class="badge b-fail">FAIL<', html)
    rows = re.findall(r'<tr class="(v-\w+)"><td>\w+</td><td>(\w+)</td>', html)
    assert rows[:3] == [
        ("v-fail", "p99_recovery_s"),
        ("v-fail", "max_ready"),
        ("v-invalid", "reject_p99_ms"),
    ]
    assert f"Why INVALID:</b> {LAG}" in html
    assert html.index('id="badge"') < html.index('id="verdicts"') < html.index('id="classes"')
    assert 'id="interrupted"' not in html


def test_an_interrupted_run_shows_interrupted_not_fail(tmp_path):
    s = Summary(run_id="r", scenario="s", stack="twin", gates=verdicts())
    html = rendered(tmp_path, s, interrupted="the load was interrupted")
    assert 'class="badge b-interrupted">INTERRUPTED<' in html and 'class="badge b-fail"' not in html
    assert "<b>Interrupted:</b> the load was interrupted." in html
    # by default from the directory's files
    (tmp_path / "traffic_summary.json").write_text(json.dumps({"interrupted": True}))
    assert ">INTERRUPTED<" in rendered(tmp_path, s)
