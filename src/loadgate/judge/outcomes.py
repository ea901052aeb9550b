"""How each call of a run ended, as the whole suite counts it (pure functions over the samples).

A call still in flight when the load is stopped ends CANCELLED. That is how a run ends, not a
failure of the stack: such calls are "cancelled at the stop", neither errors nor part of a
class's OK share. A CANCELLED call that ended while the generator was still sending is an error.
This is the one definition: the traffic summary, `loadgate run`'s exit code and the report use it.
"""

from __future__ import annotations

import pandas as pd

from loadgate.judge import names


def run_segments(samples: pd.DataFrame) -> pd.Series:
    """One label per row for each load that was started and stopped on its own: the gate in a
    gate session (phases named `<gate>/<phase>`), else "" (one run)."""
    phase = samples["phase"].fillna("").astype(str)
    return phase.str.extract(r"^([^/]*)/", expand=False).fillna("")


def stop_cancelled(samples: pd.DataFrame) -> pd.Series:
    """True for the CANCELLED calls that ended no earlier than the last send of their segment
    that was not itself cancelled: they were in flight when the load stopped."""
    status = samples["status"]
    cancelled = status == names.CANCELLED
    if not cancelled.any():
        return cancelled
    sent = samples["intended"].where(~cancelled & (status != names.DROPPED))
    last_send = sent.groupby(run_segments(samples)).transform("max")
    # a segment where every call was cancelled has no last send (NaN): all at the stop
    return cancelled & ~(samples["end"] < last_send)


def judged(samples: pd.DataFrame) -> pd.Series:
    """The calls that say something about the stack: sent (not a generator drop) and not
    cancelled at the stop."""
    return (samples["status"] != names.DROPPED) & ~stop_cancelled(samples)


def failed(samples: pd.DataFrame) -> pd.Series:
    """Judged calls that did not end OK (the proxy's rejections included)."""
    return judged(samples) & (samples["status"] != names.OK)
