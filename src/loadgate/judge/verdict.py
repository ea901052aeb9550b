"""A gate's verdict: which figure was measured, its value, the threshold and whether it passed."""

from __future__ import annotations

import math
import operator
from typing import Literal

from pydantic import BaseModel, ConfigDict

Comparison = Literal["<=", "<", ">=", ">", "=="]
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
) -> Verdict:
    """Compare `value` with `threshold`. A missing value (None/NaN) always fails: a gate whose
    figure cannot be measured has not shown the behaviour it checks."""
    measured = value is not None and not math.isnan(float(value))
    passed = bool(measured and _OPS[comparison](float(value), threshold))
    desc = f" ({what})" if what else ""
    got = f"measured {_fmt(value, unit)}" if measured else "could not be measured"
    message = (
        f"{gate}: {figure}{desc} {got}, "
        f"expected {comparison} {_fmt(threshold, unit)}: {'PASS' if passed else 'FAIL'}"
    )
    return Verdict(
        gate=gate,
        figure=figure,
        value=float(value) if measured else None,
        threshold=float(threshold),
        comparison=comparison,
        passed=passed,
        unit=unit,
        message=message,
    )
