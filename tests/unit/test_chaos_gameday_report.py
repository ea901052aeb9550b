"""A gameday's report: the steady state's verdict, each hypothesis probe measured against its
tolerance, INTERRUPTED (not FAIL) for an interrupted experiment, the killed pod named."""

import json
import re
from html import unescape

import numpy as np
import pandas as pd
import pytest

from loadgate.chaos.gameday import write_gameday_report
from loadgate.chaos.verdicts import probe_verdict, probe_verdicts, steady_state_verdict
from loadgate.report import read_summary
from loadgate.schema import SAMPLE_COLUMNS, encode_labels, write_samples, write_timeline

T0 = 1.7e9
VICTIM, OTHER = "modelserver-5f7-bbbbb", "modelserver-5f7-aaaaa"


def probe(name, tolerance, output, status="succeeded", met=True, **extra):
    return {
        "activity": {"type": "probe", "name": name, "tolerance": tolerance},
        "output": output,
        "status": status,
        "tolerance_met": met,
        **extra,
    }


P99 = {"type": "range", "range": [0, 5000]}
SHARE = {"type": "range", "range": [0.95, 1.0]}


def test_a_range_probe_is_measured_against_the_bound_it_broke():
    assert probe_verdict("after", probe("p99", P99, 420.0)).message == (
        "after: p99 (tolerance [0, 5000]) measured 420, expected <= 5000: PASS"
    )
    v = probe_verdict("after", probe("p99", P99, 8123.0, met=False))
    assert (v.status, v.comparison, v.threshold, v.value) == ("FAIL", "<=", 5000, 8123)
    low = probe_verdict("after", probe("ok", SHARE, 0.81, met=False))
    assert (low.status, low.comparison, low.threshold) == ("FAIL", ">=", 0.95)
    assert "measured 0.81, expected >= 0.95" in low.message
    high = probe_verdict("after", probe("ok", SHARE, 1.2, met=False))
    assert (high.status, high.comparison, high.threshold) == ("FAIL", "<=", 1.0)


def test_other_tolerances_follow_chaoslib_and_a_failed_probe_was_not_measured():
    v = probe_verdict("before", probe("ready", True, False, met=False))
    assert v.status == "FAIL" and "returned False, tolerance True" in v.message
    broken = probe(
        "p99",
        P99,
        None,
        status="failed",
        met=None,
        exception=["Traceback...\n", "ValueError: too few samples\n"],
    )
    v = probe_verdict("after", broken)
    assert v.status == "FAIL" and v.value is None
    assert "could not be measured" in v.message and "too few samples" in v.message


def test_an_interrupted_experiment_is_invalid_not_failed():
    v = steady_state_verdict({"status": "interrupted", "deviated": False}, "kill")
    assert v.status == "INVALID" and "interrupted before its end" in v.invalid_reason
    assert steady_state_verdict({"status": "completed", "deviated": True}, "kill").status == "FAIL"
    assert steady_state_verdict({"status": "completed", "deviated": False}, "kill").passed
    journal = {"steady_states": {"before": {"probes": [probe("p99", P99, 1.0)]}, "after": None}}
    assert [v.gate for v in probe_verdicts(journal)] == ["hypothesis before"]


def gameday_dir(tmp_path, status="completed", after_p99=610.0):
    """A kill at 10 s under 10 calls/s; long streams in flight at the stop (20 s) cancelled."""
    n = 200
    intended = T0 + np.arange(n) * 0.1
    cls = np.where(np.arange(n) % 10 == 0, "llm-long", "llm-short")
    lat = np.where(cls == "llm-long", 8.0, 0.2)
    served = np.where(np.arange(n) % 2 == 0, "127.0.0.1:7002", "127.0.0.1:7001")
    status_ = np.where(intended + lat > T0 + 20.05, "CANCELLED", "OK")
    end = np.minimum(intended + lat, T0 + 20.05)
    hit = (served == "127.0.0.1:7002") & (intended <= T0 + 10) & (intended + lat > T0 + 10)
    status_ = np.where(hit, "INTERNAL", status_)
    end = np.where(hit, T0 + 10, end)
    served = np.where((served == "127.0.0.1:7002") & (intended > T0 + 10), "127.0.0.1:7003", served)
    samples = pd.DataFrame(
        {
            "intended": intended,
            "start": intended + 0.001,
            "first_byte": intended + 0.01,
            "end": end,
            "cls": cls,
            "model": "llm",
            "status": status_,
            "served_by": served,
            "tokens": 50,
            "bytes": 1,
            "phase": "steady",
            "worker": "w0",
            "request_id": "",
            "error": np.where(
                hit, "Stream removed", np.where(status_ == "CANCELLED", "cancelled", "")
            ),
        }
    )[SAMPLE_COLUMNS]
    rows = [
        (T0 - 5, "twin", "pod_ready", {"pod": OTHER, "address": "127.0.0.1:7001"}, 1.0),
        (T0 - 5, "twin", "pod_ready", {"pod": VICTIM, "address": "127.0.0.1:7002"}, 1.0),
        (
            T0 + 12,
            "twin",
            "pod_ready",
            {"pod": "modelserver-5f7-ccccc", "address": "127.0.0.1:7003"},
            1.0,
        ),
        (T0 + 10, "chaos", "kill_pods", {"pod": VICTIM, "signal": "SIGKILL"}, 1.0),
    ]
    timeline = pd.DataFrame(
        [(t, s, m, encode_labels(lab), v) for t, s, m, lab, v in rows],
        columns=["time", "source", "metric", "labels", "value"],
    )
    write_samples(samples, tmp_path / "samples.parquet")
    write_timeline(timeline, tmp_path / "timeline.parquet")
    states = {"before": {"probes": [probe("short-p99-ms", P99, 300.0)]}}
    if status != "interrupted":
        states["after"] = {"probes": [probe("short-p99-ms", P99, after_p99, met=after_p99 <= 5000)]}
    journal = {"status": status, "deviated": after_p99 > 5000, "steady_states": states}
    (tmp_path / "journal.json").write_text(json.dumps(journal))
    return journal, {"title": "Kill a model pod under load"}


def test_a_kill_report_names_the_killed_pod_and_cancellations_are_not_errors(tmp_path):
    journal, experiment = gameday_dir(tmp_path)
    html = write_gameday_report(tmp_path, journal, experiment).read_text()
    summary = read_summary(tmp_path)
    assert summary.status == "PASS" and [v.gate for v in summary.gates] == [
        "hypothesis before",
        "hypothesis after",
        "chaos",
    ]
    assert summary.generator is not None and summary.generator.sent == 200
    assert 'class="badge b-pass">PASS<' in html
    long = re.search(r"<td>llm-long</td>((?:<td[^>]*>[^<]*</td>){8})", html).group(1)
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", long)
    # calls, OK, OK share, rejected, errors, cancelled at stop: the long streams on the victim
    # failed (8), those in flight at the stop are apart (7), none of them is an "error"
    assert (cells[0], cells[4], cells[5]) == ("20", "8", "7")
    killed = re.search(r'<tr class="killed"><td>([^<]+)</td>', html)
    assert killed and killed.group(1) == VICTIM
    assert "pod killed <b>" + VICTIM + "</b>" in html
    assert "127.0.0.1:7002</td>" in html  # the address beside the name, not instead of it


def test_a_deviated_gameday_fails_with_the_probe_that_broke(tmp_path):
    journal, experiment = gameday_dir(tmp_path, after_p99=8123.0)
    html = write_gameday_report(tmp_path, journal, experiment).read_text()
    assert 'class="badge b-fail">FAIL<' in html
    first = unescape(re.search(r'<tr class="v-fail">.*?<td class="msg">([^<]*)', html, re.S)[1])
    assert (
        first
        == "hypothesis after: short-p99-ms (tolerance [0, 5000]) measured 8123, expected <= 5000"
    )


def test_an_interrupted_gameday_says_interrupted(tmp_path):
    journal, experiment = gameday_dir(tmp_path, status="interrupted")
    html = write_gameday_report(tmp_path, journal, experiment).read_text()
    assert 'class="badge b-interrupted">INTERRUPTED<' in html
    assert 'class="badge b-fail"' not in html
    assert "the experiment was interrupted (journal status interrupted)" in html
    assert read_summary(tmp_path).status == "INVALID"


@pytest.mark.parametrize("status", ["failed", "aborted"])
def test_a_gameday_that_did_not_complete_fails(tmp_path, status):
    journal, experiment = gameday_dir(tmp_path, status=status)
    write_gameday_report(tmp_path, journal, experiment)
    assert read_summary(tmp_path).status == "FAIL"
