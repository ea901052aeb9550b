"""What a `loadgate run` concludes, and so its exit code (loadgate.exits.STATUS_EXIT):

- INTERRUPTED: stopped by SIGINT/SIGTERM before the end of its schedule (every row is written);
- FAIL: the share of failed calls passed `--fail-on-error-rate` (by default any failure counts:
  every call that did not end OK, rejections included, but not the calls cancelled at the stop,
  `loadgate.judge.outcomes`);
- INVALID: the generator fell behind or stopped early (its figures describe the generator, not
  the stack) and nothing failed that the generator cannot cause itself: a late send runs into
  its deadline, a generator process that stops cancels its calls, so DEADLINE_EXCEEDED and
  CANCELLED do not FAIL a run whose generator was invalid;
- PASS otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

from loadgate.errors import one_line
from loadgate.judge import names
from loadgate.judge.outcomes import failed, judged

RunStatus = Literal["PASS", "FAIL", "INVALID", "INTERRUPTED"]


@dataclass(frozen=True)
class RunVerdict:
    status: RunStatus
    reason: str
    error_share: float | None  # failed / judged calls; None when no call was judged

    def record(self, summary: dict, max_error_rate: float) -> dict:
        """The summary with this verdict (traffic_summary.json; the report reads `status`)."""
        return {
            **summary,
            "status": self.status,
            "status_reason": self.reason,
            "error_share": self.error_share,
            "fail_on_error_rate": max_error_rate,
        }


def _top_error(summary: dict) -> str:
    messages = (summary.get("total") or {}).get("error_messages") or []
    if not messages:
        return ""
    m = messages[0]
    return f"; most: {m['count']} {m['status']} {one_line(m['message'] or '', 100)!r}"


def run_verdict(
    samples: pd.DataFrame, summary: dict, max_error_rate: float = 0.0, interrupted: str = ""
) -> RunVerdict:
    n = int(judged(samples).sum())
    bad = failed(samples)
    share = float(bad.sum() / n) if n else None
    gen = summary.get("generator") or {}
    if interrupted:
        sent = gen.get("sent", len(samples))
        return RunVerdict(
            "INTERRUPTED",
            f"interrupted by {interrupted}: {sent} calls sent before the stop, each with its row",
            share,
        )
    counted = bad
    if not gen.get("valid", True):  # what an invalid generator does itself does not fail the stack
        counted = bad & ~samples["status"].isin((names.TIMEOUT, names.CANCELLED))
    counted_share = float(counted.sum() / n) if n else 0.0
    if counted_share > max_error_rate:
        return RunVerdict(
            "FAIL",
            f"{counted_share:.1%} of {n} calls failed (> --fail-on-error-rate "
            f"{max_error_rate:g}){_top_error(summary)}",
            share,
        )
    if not gen.get("valid", True):
        return RunVerdict("INVALID", "; ".join(gen.get("invalid_reasons") or []), share)
    if n == 0:
        return RunVerdict("INVALID", "no call was sent", share)
    return RunVerdict("PASS", f"{share:.1%} of {n} calls failed", share)
