"""`loadgate run`'s conclusion and so its exit code: PASS / FAIL / INVALID / INTERRUPTED."""

import pandas as pd
import pytest

from loadgate.exits import STATUS_EXIT, ExitCode
from loadgate.traffic.verdict import run_verdict


def rows(statuses: list[str], ends: list[float] | None = None) -> pd.DataFrame:
    n = len(statuses)
    intended = [100.0 + i for i in range(n)]
    return pd.DataFrame(
        {
            "intended": intended,
            "end": ends if ends is not None else [t + 0.5 for t in intended],
            "status": statuses,
            "phase": "steady",
        }
    )


VALID = {"generator": {"valid": True, "sent": 10}}


def summary_with(messages=(), valid=True, reasons=()) -> dict:
    return {
        "generator": {"valid": valid, "sent": 10, "invalid_reasons": list(reasons)},
        "total": {"error_messages": list(messages)},
    }


def test_all_ok_passes():
    v = run_verdict(rows(["OK"] * 10), VALID)
    assert (v.status, v.error_share) == ("PASS", 0.0)
    assert STATUS_EXIT[v.status] == ExitCode.OK


def test_every_call_not_found_fails_and_names_the_status():
    msg = [{"status": "NOT_FOUND", "message": "unknown model: 'typo'", "count": 10}]
    v = run_verdict(rows(["NOT_FOUND"] * 10), summary_with(msg))
    assert v.status == "FAIL" and STATUS_EXIT[v.status] == 1
    assert "100.0% of 10 calls failed" in v.reason
    assert "NOT_FOUND" in v.reason and "unknown model" in v.reason


def test_the_error_rate_allowed_is_a_bound_not_a_switch():
    df = rows(["OK"] * 9 + ["UNAVAILABLE"])  # 10 % failed
    assert run_verdict(df, VALID, max_error_rate=0.0).status == "FAIL"
    assert run_verdict(df, VALID, max_error_rate=0.1).status == "PASS"
    assert run_verdict(df, VALID, max_error_rate=0.05).status == "FAIL"


def test_calls_cancelled_at_the_stop_are_not_failures():
    # the last two were still in flight when the load stopped: they end after the last send
    statuses = ["OK"] * 8 + ["CANCELLED"] * 2
    ends = [100.5 + i for i in range(8)] + [120.0, 120.0]
    v = run_verdict(rows(statuses, ends), VALID)
    assert v.status == "PASS" and v.error_share == 0.0
    # a CANCELLED call that ended while sends went on is an error
    early = rows(["OK", "CANCELLED", "OK", "OK"], [100.5, 101.2, 102.5, 103.5])
    assert run_verdict(early, VALID).status == "FAIL"


def test_an_invalid_generator_is_invalid_unless_the_stack_failed_too():
    late = summary_with(valid=False, reasons=["lag p99 0.2 s > 0.05 s"])
    # its own late sends run into their deadlines: not the stack's failure
    v = run_verdict(rows(["OK"] * 8 + ["DEADLINE_EXCEEDED"] * 2), late)
    assert v.status == "INVALID" and "lag p99" in v.reason
    assert STATUS_EXIT[v.status] == ExitCode.INVALID
    # a rejection is the stack's, whatever the generator did
    assert run_verdict(rows(["OK"] * 8 + ["UNAVAILABLE"] * 2), late).status == "FAIL"


def test_interrupted_wins_and_keeps_the_share():
    v = run_verdict(rows(["OK"] * 9 + ["UNAVAILABLE"]), VALID, interrupted="SIGINT")
    assert v.status == "INTERRUPTED" and "SIGINT" in v.reason
    assert v.error_share == pytest.approx(0.1)
    assert STATUS_EXIT[v.status] == ExitCode.INTERRUPTED == 130


def test_nothing_sent_is_invalid():
    assert run_verdict(rows([]), VALID).status == "INVALID"


def test_the_verdict_is_recorded_in_the_summary():
    v = run_verdict(rows(["OK"] * 10), VALID)
    out = v.record({"a": 1}, 0.02)
    assert out["status"] == "PASS" and out["fail_on_error_rate"] == 0.02 and out["a"] == 1
