"""Click parameter types shared by the commands, so a bad value is blamed on the flag given."""

from __future__ import annotations

import math

import click


class FiniteFloat(click.ParamType):
    """A finite float above `low` (or at least `low` with `inclusive`): time scales, delays."""

    name = "float"

    def __init__(self, low: float = 0.0, inclusive: bool = False) -> None:
        self.low, self.inclusive = low, inclusive

    def convert(self, value, param, ctx) -> float:
        try:
            x = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        ok = x >= self.low if self.inclusive else x > self.low
        if not (math.isfinite(x) and ok):
            self.fail(
                f"must be a finite number {'>=' if self.inclusive else '>'} {self.low:g}, got {value}",
                param,
                ctx,
            )
        return x


POSITIVE = FiniteFloat()  # > 0: a time scale, an interval
NON_NEGATIVE = FiniteFloat(inclusive=True)  # >= 0: a delay
