"""Generator health the traffic summary cannot see: a closed-loop generator that stalled.

Closed-loop users start each call when they decide to (intended == start), so a generator that
froze (starved of CPU, paused) shows no send lag: it just sends nothing. With users running,
some call is always in flight except during the users' think time; a longer span with no call
in flight is the generator's pause, not the stack's answer, and the run describes the
generator (like an open-loop run whose send lag is too high).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from loadgate.judge import names
from loadgate.traffic.scenario import Scenario

MIN_IDLE_S = 1.0


def longest_idle_s(samples: pd.DataFrame) -> float:
    """The longest span, between the first send and the last end, with no call in flight."""
    s = samples[samples["status"] != names.DROPPED]
    if len(s) < 2:
        return 0.0
    order = np.argsort(s["start"].to_numpy(), kind="stable")
    start = s["start"].to_numpy()[order]
    busy_until = np.maximum.accumulate(s["end"].to_numpy()[order])
    return float(max(0.0, np.max(start[1:] - busy_until[:-1])))


def stalled(samples: pd.DataFrame, scenario: Scenario) -> str:
    """Why a closed-loop run is not to be trusted ("" when it is, or when it is open loop)."""
    if scenario.open_loop or samples.empty:
        return ""
    think = max(scenario.closed.wait_s)
    idle = longest_idle_s(samples)
    if idle > max(MIN_IDLE_S, 2 * think):
        return f"generator stalled: no call in flight for {idle:.1f} s (users think <= {think:g} s)"
    return ""
