"""The report's traffic table and error list: pure functions over the samples.

Calls cancelled at the stop (`loadgate.judge.outcomes`) are counted on their own: neither errors
nor part of the class's OK share.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from loadgate.judge import names
from loadgate.judge.latency import latency_ms
from loadgate.judge.outcomes import stop_cancelled
from loadgate.traffic.summary import ERROR_MESSAGES, error_messages

TOTAL = "all classes"


@dataclass(frozen=True)
class ClassRow:
    cls: str
    calls: int  # rows that are calls (generator drops excluded)
    ok: int
    rejected: int  # the proxy's fail-fast answers (UNAVAILABLE / RESOURCE_EXHAUSTED)
    errors: int  # every other failure, mid-run cancellations included
    cancelled_at_stop: int
    p50_ms: float  # latency of OK calls from the intended send
    p99_ms: float

    @property
    def ok_share(self) -> float | None:
        """OK / calls that ended before the stop; None when none did."""
        judged = self.calls - self.cancelled_at_stop
        return self.ok / judged if judged else None


def class_table(samples: pd.DataFrame) -> list[ClassRow]:
    """One row per traffic class (sorted), then one for all classes together."""
    calls = samples[samples["status"] != names.DROPPED]
    if calls.empty:
        return []
    status = calls["status"]
    ok = status == names.OK
    frame = pd.DataFrame(
        {
            "cls": calls["cls"].astype(str),
            "ok": ok,
            "rejected": status.isin(names.REJECTED),
            "at_stop": stop_cancelled(calls),
            "lat": latency_ms(calls).where(ok),
        }
    )
    both = pd.concat([frame, frame.assign(cls=TOTAL)], ignore_index=True)
    g = both.groupby("cls", sort=False)
    t = pd.DataFrame(
        {
            "calls": g.size(),
            "ok": g["ok"].sum(),
            "rejected": g["rejected"].sum(),
            "at_stop": g["at_stop"].sum(),
            "p50": g["lat"].quantile(0.5),
            "p99": g["lat"].quantile(0.99),
        }
    )
    order = sorted(frame["cls"].unique()) + [TOTAL]
    return [
        ClassRow(
            cls=c,
            calls=int(r.calls),
            ok=int(r.ok),
            rejected=int(r.rejected),
            errors=int(r.calls - r.ok - r.rejected - r.at_stop),
            cancelled_at_stop=int(r.at_stop),
            p50_ms=float(r.p50),
            p99_ms=float(r.p99),
        )
        for c, r in t.loc[order].iterrows()
    ]


def error_table(samples: pd.DataFrame, limit: int = ERROR_MESSAGES) -> list[dict]:
    """The failed calls' distinct (status, message) with counts, most frequent first, without
    the cancellations at the stop; a failure without a message is listed as "(no message recorded)"."""
    return error_messages(samples, limit)
