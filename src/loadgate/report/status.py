"""The report's verdict at a glance: the badge, the verdicts in reading order, and whether the
run was interrupted (read from what the run's writers leave in its directory)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from loadgate.completion import incomplete
from loadgate.judge.verdict import Verdict
from loadgate.report.summary import Summary
from loadgate.traffic.summary import SUMMARY_FILE

Badge = Literal["PASS", "FAIL", "INVALID", "INTERRUPTED"]
ORDER = {"FAIL": 0, "INVALID": 1, "PASS": 2}
JOURNAL_FILE = "journal.json"  # a gameday's (chaoslib's) journal
TRAFFIC_FILE = SUMMARY_FILE  # `loadgate run`'s summary (loadgate.traffic.summary)


def badge(summary: Summary, interrupted: str) -> Badge:
    """INTERRUPTED when the run did not reach its end, whatever its verdicts say so far."""
    return "INTERRUPTED" if interrupted else summary.status


def ordered(verdicts: list[Verdict]) -> list[Verdict]:
    """FAIL first, then INVALID, then PASS; the gates' order within each."""
    return sorted(verdicts, key=lambda v: ORDER.get(v.status, 1))


def headline(verdicts: list[Verdict]) -> str:
    """e.g. "1 of 25 figures FAIL, 6 INVALID, 18 PASS"."""
    if not verdicts:
        return "no gates were evaluated"
    n = Counter(v.status for v in verdicts)
    parts = [f"{n[s]} {s}" for s in ("FAIL", "INVALID", "PASS") if n[s]]
    count, status = parts[0].split(" ", 1)
    noun = "figure" if len(verdicts) == 1 else "figures"
    return f"{count} of {len(verdicts)} {noun} {status}" + "".join(f", {p}" for p in parts[1:])


def _json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def journal_interruption(journal: dict[str, Any]) -> str:
    status = journal.get("status")
    return (
        f"the experiment was interrupted (journal status {status})"
        if status == "interrupted"
        else ""
    )


def traffic_interruption(traffic: dict[str, Any], where: str = "the load") -> str:
    """From a traffic summary: marked interrupted, or its generator stopped early."""
    if traffic.get("interrupted") or str(traffic.get("status", "")).upper() == "INTERRUPTED":
        return f"{where} was interrupted"
    if (traffic.get("generator") or {}).get("stopped_early"):
        return f"{where} was stopped before the end of its schedule"
    return ""


def interruption(run_dir: Path) -> str:
    """Why the run did not reach its end, "" when it did. A gameday's journal decides when there
    is one (its load is always stopped by the experiment, so its traffic summary says nothing);
    else the traffic summary of a `loadgate run`, or of each gate of a gate session. A run
    directory still marked INCOMPLETE by another process was killed (or is still running)."""
    killed = incomplete(run_dir)
    if killed:
        return killed
    journal = _json(run_dir / JOURNAL_FILE)
    if journal is not None:
        return journal_interruption(journal)
    reasons = []
    traffic = _json(run_dir / TRAFFIC_FILE)
    if traffic is not None:
        reasons.append(traffic_interruption(traffic))
    for path in sorted(run_dir.glob(f"gates/*/{TRAFFIC_FILE}")):
        gate = _json(path)
        if gate is not None:
            reasons.append(traffic_interruption(gate, f"gate {path.parent.name}'s load"))
    return "; ".join(r for r in reasons if r)


def verdict_rows(verdicts: list[Verdict]) -> list[dict[str, Any]]:
    """The verdict table in reading order; `message` without its status tail (the verdict has
    its own column), `reason` why an INVALID figure could not be trusted."""
    rows = []
    for v in ordered(verdicts):
        tail = f"INVALID: {v.invalid_reason}" if v.invalid_reason else v.status
        rows.append(
            {
                "v": v,
                "css": {"FAIL": "v-fail", "INVALID": "v-invalid"}.get(v.status, "v-pass"),
                "message": v.message.removesuffix(f": {tail}"),
                "reason": v.invalid_reason,
            }
        )
    return rows
