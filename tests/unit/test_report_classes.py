"""The report's traffic table: a call in flight when the load stopped is neither an error nor
part of the OK share; a CANCELLED call while the load was still sending is an error."""

import pandas as pd
import pytest

from loadgate.judge.outcomes import stop_cancelled
from loadgate.report.classes import TOTAL, class_table, error_table
from loadgate.schema import SAMPLE_COLUMNS
from loadgate.traffic.summary import NO_MESSAGE


def calls(rows) -> pd.DataFrame:
    """rows: (cls, intended, end, status[, error[, phase]])."""
    out = []
    for r in rows:
        cls, intended, end, status, error, phase = (*r, *("", "steady")[len(r) - 4 :])
        out.append(
            {
                "intended": intended,
                "start": intended + 0.001,
                "first_byte": intended + 0.01,
                "end": end,
                "cls": cls,
                "model": "m",
                "status": status,
                "served_by": "10.0.0.1:8001",
                "tokens": 1,
                "bytes": 1,
                "phase": phase,
                "worker": "w0",
                "request_id": "",
                "error": error,
            }
        )
    return pd.DataFrame(out, columns=SAMPLE_COLUMNS)


def kill_run() -> pd.DataFrame:
    """The issue's case: 20 long streams all cancelled when the experiment stopped the load,
    short calls fine, one short call cancelled mid-run (a client cancellation: an error)."""
    long = [("llm-long", 1.0 + i, 30.05, "CANCELLED", "Locally cancelled") for i in range(20)]
    short = [("llm-short", 0.5 * i, 0.5 * i + 0.2, "OK") for i in range(60)]
    return calls([*long, *short, ("llm-short", 5.0, 5.1, "CANCELLED", "Locally cancelled")])


def test_calls_in_flight_at_the_stop_are_apart_from_errors_and_the_ok_share():
    rows = {r.cls: r for r in class_table(kill_run())}
    long = rows["llm-long"]
    assert (long.calls, long.ok, long.errors, long.cancelled_at_stop) == (20, 0, 0, 20)
    assert long.ok_share is None  # no long call ended before the stop: nothing to judge
    short = rows["llm-short"]
    assert (short.calls, short.ok, short.errors, short.cancelled_at_stop) == (61, 60, 1, 0)
    assert short.ok_share == pytest.approx(60 / 61)
    total = rows[TOTAL]
    assert (total.calls, total.ok, total.errors, total.cancelled_at_stop) == (81, 60, 1, 20)
    assert [r.cls for r in class_table(kill_run())] == ["llm-long", "llm-short", TOTAL]


def test_a_cancellation_before_the_last_send_is_an_error():
    s = calls(
        [
            ("cv", 0.0, 0.1, "OK"),
            ("cv", 1.0, 1.5, "CANCELLED"),  # ended while sends went on: not the stop
            ("cv", 2.0, 2.1, "OK"),
            ("cv", 1.9, 2.4, "CANCELLED"),  # still running after the last send: the stop
        ]
    )
    assert stop_cancelled(s).tolist() == [False, False, False, True]
    (cv, _) = class_table(s)
    assert (cv.errors, cv.cancelled_at_stop, cv.ok_share) == (1, 1, pytest.approx(2 / 3))


def test_each_gate_of_a_session_has_its_own_stop():
    """Gate a's load stopped at 10 s, gate b's at 40 s: a's last call is at its stop even though
    b sent later."""
    s = calls(
        [
            ("cv", 0.0, 0.1, "OK", "", "a/steady"),
            ("cv", 9.0, 10.0, "CANCELLED", "", "a/steady"),
            ("cv", 30.0, 30.1, "OK", "", "b/steady"),
            ("cv", 35.0, 36.0, "CANCELLED", "", "b/steady"),
            ("cv", 39.0, 39.1, "OK", "", "b/steady"),
        ]
    )
    assert stop_cancelled(s).tolist() == [False, True, False, False, False]


def test_rejections_and_drops():
    s = calls(
        [
            ("cv", 0.0, 0.003, "UNAVAILABLE", "overflow"),
            ("cv", 0.1, 0.2, "OK"),
            ("cv", 0.2, 0.2, "DROPPED"),
            ("cv", 0.3, 0.4, "RESOURCE_EXHAUSTED", "busy"),
        ]
    )
    (cv, _) = class_table(s)
    assert (cv.calls, cv.ok, cv.rejected, cv.errors) == (3, 1, 2, 0)


def test_error_messages_with_counts_without_the_stop():
    s = pd.concat(
        [
            kill_run(),
            calls(
                [("cv", 2.0 + i * 0.1, 2.3, "UNAVAILABLE", "no healthy upstream") for i in range(3)]
                + [("cv", 3.0, 3.1, "INTERNAL", "Stream removed"), ("cv", 3.2, 3.3, "INTERNAL")]
            ),
        ],
        ignore_index=True,
    )
    assert error_table(s) == [
        {"status": "UNAVAILABLE", "message": "no healthy upstream", "count": 3},
        {"status": "CANCELLED", "message": "Locally cancelled", "count": 1},
        {"status": "INTERNAL", "message": "Stream removed", "count": 1},
        {"status": "INTERNAL", "message": NO_MESSAGE, "count": 1},
    ]


def test_an_empty_run_has_no_rows():
    assert class_table(calls([])) == [] and error_table(calls([])) == []
