"""Every call accounted for: sent = OK + rejected + errors + timeouts + cancelled, and the
proxy's own request counter agrees with what the generator sent."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from loadgate.judge import names
from loadgate.judge.timeline import counter_delta


@dataclass(frozen=True)
class AccountingResult:
    sent: int  # rows that are calls (generator drops excluded)
    ok: int
    rejected: int
    errors: int  # any other non-OK status
    timeouts: int
    cancelled: int
    unaccounted: int  # rows without a status: the recorder lost the outcome
    dropped: int  # arrivals the generator never sent
    balanced: bool  # sent == ok + rejected + errors + timeouts + cancelled
    proxy_delta: float | None = None  # increase of the proxy's request counter
    proxy_mismatch: float | None = None  # |proxy_delta - expected| / max(expected, 1)


def accounting(
    samples: pd.DataFrame,
    timeline: pd.DataFrame | None = None,
    proxy_metric: str = names.PROXY_REQUESTS_METRIC,
    proxy_source: str | tuple[str, ...] | None = None,
    proxy_counts_rejected: bool = True,
    window: tuple[float, float] | None = None,
) -> AccountingResult:
    """Count outcomes; with a timeline, compare the proxy counter's increase over `window`
    (default: the whole timeline) with the calls it should have seen. Envoy's upstream_rq_total
    excludes its own overflow replies: pass proxy_counts_rejected=False for such a counter."""
    status = samples["status"]
    missing = status.isna() | (status == "")
    dropped = int((status == names.DROPPED).sum())
    calls = samples[status != names.DROPPED]
    st = calls["status"].fillna("")
    ok = int((st == names.OK).sum())
    rejected = int(st.isin(names.REJECTED).sum())
    timeouts = int((st == names.TIMEOUT).sum())
    cancelled = int((st == names.CANCELLED).sum())
    unaccounted = int(missing.sum())
    errors = len(calls) - ok - rejected - timeouts - cancelled - unaccounted
    delta = mismatch = None
    if timeline is not None and not calls.empty:
        # default: the whole timeline, which brackets the run (scrapes before and after it)
        t0, t1 = window or (None, None)
        d = counter_delta(timeline, proxy_metric, t0, t1, source=proxy_source)
        if d == d:  # not NaN: the counter was recorded
            expected = len(calls) - (0 if proxy_counts_rejected else rejected)
            delta = d
            mismatch = abs(d - expected) / max(expected, 1)
    return AccountingResult(
        sent=len(calls),
        ok=ok,
        rejected=rejected,
        errors=errors,
        timeouts=timeouts,
        cancelled=cancelled,
        unaccounted=unaccounted,
        dropped=dropped,
        balanced=unaccounted == 0 and ok + rejected + errors + timeouts + cancelled == len(calls),
        proxy_delta=delta,
        proxy_mismatch=mismatch,
    )
