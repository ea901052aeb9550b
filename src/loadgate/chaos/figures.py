"""Pure figures over a window of sample rows, for the chaos probes (DataFrames in, numbers out)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from loadgate.judge import names


def window_rows(
    samples: pd.DataFrame, now: float, window_s: float, traffic_class: str | None = None
) -> pd.DataFrame:
    """Calls sent within the last `window_s` seconds (by intended send) that have ended; generator
    drops and calls cancelled by the end of a run are not outcomes of the stack."""
    s = samples[(samples["intended"] >= now - window_s) & (samples["end"] <= now + 1.0)]
    s = s[~s["status"].isin([names.DROPPED, names.CANCELLED])]
    if traffic_class:
        s = s[s["cls"] == traffic_class]
    return s


def success_rate(rows: pd.DataFrame) -> float:
    """Share of calls that ended OK (NaN without calls)."""
    if rows.empty:
        return math.nan
    return float((rows["status"] == names.OK).mean())


def percentile_ms(rows: pd.DataFrame, percentile: float, measure: str = "latency") -> float:
    """Percentile of OK calls, in ms, measured from the scheduled send (coordinated-omission
    free): `latency` to the end, `ttft` to the first token / byte. NaN without OK calls."""
    ok = rows[rows["status"] == names.OK]
    if measure == "latency":
        values = ok["end"] - ok["intended"]
    elif measure == "ttft":
        values = ok["first_byte"] - ok["intended"]
    else:
        raise ValueError(f"measure must be 'latency' or 'ttft' (got {measure!r})")
    values = values.dropna()
    if values.empty:
        return math.nan
    return float(np.percentile(values.to_numpy() * 1000.0, percentile))


def rejection_ms(rows: pd.DataFrame, percentile: float) -> float:
    """Percentile (ms) of how long a rejected call (UNAVAILABLE / RESOURCE_EXHAUSTED) took to be
    answered, from its actual send; 0.0 when nothing was rejected (nothing waited)."""
    rej = rows[rows["status"].isin(names.REJECTED)]
    if rej.empty:
        return 0.0
    return float(np.percentile((rej["end"] - rej["start"]).to_numpy() * 1000.0, percentile))
