"""How late the pod's event loop runs: the simulated accelerator keeps time with asyncio sleeps,
so a loop that wakes late (a CPU-starved machine) stretches every simulated duration. The twin's
gate reads this as `loadgate_event_loop_lag_seconds` and calls a run INVALID when a pod could not
keep the time it simulates (docs/gate.md, "Trust").
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

TICK_S = 0.02  # one measurement every 20 ms
WINDOW = 50  # the gauge is the worst lag of the last second


class LoopLag:
    def __init__(self) -> None:
        self.recent: deque[float] = deque(maxlen=WINDOW)

    @property
    def worst_recent_s(self) -> float:
        return max(self.recent, default=0.0)

    async def run(self) -> None:
        """Sleep TICK_S again and again; record how much later than asked each wake-up came."""
        while True:
            t0 = time.monotonic()
            await asyncio.sleep(TICK_S)
            self.recent.append(max(0.0, time.monotonic() - t0 - TICK_S))


def render(lag: LoopLag) -> str:
    name = "loadgate_event_loop_lag_seconds"
    return (
        f"# HELP {name} Worst lateness of the event loop's wake-ups over the last second\n"
        f"# TYPE {name} gauge\n{name} {lag.worst_recent_s:.6f}\n"
    )
