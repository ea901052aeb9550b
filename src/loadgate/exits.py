"""The exit codes of every `loadgate` command: one table, shown in README.md and every `--help`.

A command says what "the stack failed a check" means for it (FAILED_MEANS); the codes and their
general meaning are the same everywhere.
"""

from __future__ import annotations

import textwrap
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # the stack failed a check
    BAD_INPUT = 2  # one line `loadgate: error: ...`
    INVALID = 3  # a measurement could not be trusted and nothing failed
    INTERRUPTED = 130  # SIGINT / SIGTERM (128 + SIGINT, as a shell reports Ctrl-C)


MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "ok",
    ExitCode.FAILED: "the stack failed a check",
    ExitCode.BAD_INPUT: "bad input: one line `loadgate: error: ...`, no traceback",
    ExitCode.INVALID: "a measurement could not be trusted and nothing failed: retry, do not "
    "blame the stack",
    ExitCode.INTERRUPTED: "interrupted (SIGINT/SIGTERM): what was measured is written and "
    "marked INTERRUPTED",
}

# What exit 1 means for each command that can give it.
FAILED_MEANS: dict[str, str] = {
    "run": "the share of failed calls passed --fail-on-error-rate (default: any error but the "
    "calls cancelled at the stop)",
    "gate": "a gate's figure failed its threshold, or a gate test is missing",
    "gameday": "the steady state deviated, or the experiment failed",
    "capacity": "no probe met the SLOs (the capacity is below the first load probed)",
    "compare": "a gating figure regressed beyond noise and its floor",
    "lint": "the manifests break a rule (errors, not warnings)",
}

# A verdict's status -> the exit code (gate, gameday, run, capacity).
STATUS_EXIT: dict[str, ExitCode] = {
    "PASS": ExitCode.OK,
    "FAIL": ExitCode.FAILED,
    "INVALID": ExitCode.INVALID,
    "INTERRUPTED": ExitCode.INTERRUPTED,
}


def rows(command: str | None = None) -> list[tuple[int, str]]:
    """(code, meaning) for `command` (its own meaning of 1 when it has one)."""
    out = []
    for code, meaning in MEANINGS.items():
        if code is ExitCode.FAILED and command in FAILED_MEANS:
            meaning = f"{meaning}: {FAILED_MEANS[command]}"
        out.append((int(code), meaning))
    return out


def help_epilog(command: str | None = None) -> str:
    """The table as a `--help` epilog (click keeps `\\b` paragraphs as written)."""
    lines = ["\b", "Exit codes:"]
    for code, meaning in rows(command):
        lines += textwrap.wrap(
            meaning,
            76,
            initial_indent=f"  {code:<4} ",
            subsequent_indent=" " * 7,
            break_on_hyphens=False,
        )
    return "\n".join(lines)


def markdown_table() -> str:
    """The table README.md shows (a test keeps the two equal)."""
    lines = ["| exit code | meaning |", "|---|---|"]
    for code, meaning in rows():
        if code == ExitCode.FAILED:
            meaning += ": " + "; ".join(f"`{c}`: {m}" for c, m in FAILED_MEANS.items())
        lines.append(f"| {code} | {meaning} |")
    return "\n".join(lines)
