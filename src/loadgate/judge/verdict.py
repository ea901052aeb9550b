"""A gate's verdict: which figure was measured, its value, the threshold and what it says:
PASS, FAIL (the stack did not do what the threshold asks), or INVALID (the measurement cannot be
trusted: the generator or the twin could not keep time; see `loadgate.judge.trust`)."""

from __future__ import annotations

import math
import operator
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

Comparison = Literal["<=", "<", ">=", ">", "=="]
Status = Literal["PASS", "FAIL", "INVALID"]
_OPS = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
    "==": operator.eq,
}


class Verdict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    gate: str  # e.g. "balance"
    figure: str  # e.g. "inflight_imbalance_p95"
    value: float | None  # None: the figure could not be measured (never happened)
    threshold: float
    comparison: Comparison
    passed: bool
    unit: str = ""
    message: str
    status: Status  # PASS iff passed; FAIL or INVALID otherwise
    invalid_reason: str = ""

    @model_validator(mode="before")
    @classmethod
    def _status_of_older_files(cls, data: object) -> object:
        """summary.json files written before INVALID existed have only `passed`."""
        if isinstance(data, dict) and "status" not in data:
            data = {**data, "status": "PASS" if data.get("passed") else "FAIL"}
        return data


def _fmt(x: float | None, unit: str) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "not measured"
    return f"{x:.4g}{(' ' + unit) if unit else ''}"


def check(
    gate: str,
    figure: str,
    value: float | None,
    comparison: Comparison,
    threshold: float,
    unit: str = "",
    what: str = "",
    untrusted: list[str] | None = None,
) -> Verdict:
    """Compare `value` with `threshold`. A missing value (None/NaN) always fails: a gate whose
    figure cannot be measured has not shown the behaviour it checks. `untrusted`: reasons the
    measurement cannot be trusted — the verdict is then INVALID, whatever the value says."""
    measured = value is not None and not math.isnan(float(value))
    passed = bool(measured and _OPS[comparison](float(value), threshold))
    status: Status = "PASS" if passed else "FAIL"
    reason = "; ".join(untrusted or [])
    if reason:
        status, passed = "INVALID", False
    desc = f" ({what})" if what else ""
    got = f"measured {_fmt(value, unit)}" if measured else "could not be measured"
    tail = f"INVALID: {reason}" if reason else status
    message = f"{gate}: {figure}{desc} {got}, expected {comparison} {_fmt(threshold, unit)}: {tail}"
    return Verdict(
        gate=gate,
        figure=figure,
        value=float(value) if measured else None,
        threshold=float(threshold),
        comparison=comparison,
        passed=passed,
        unit=unit,
        message=message,
        status=status,
        invalid_reason=reason,
    )
