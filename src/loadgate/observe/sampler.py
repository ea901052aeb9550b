"""Sample a platform's state during a run into timeline rows (a Kubernetes API has no history).

    sampler = Sampler(platform.snapshot, interval_s=1.0, max_s=1800).start()
    ...  # the run
    rows = sampler.stop()            # list of TIMELINE rows, oldest first

Bounded in time (`max_s`) and in failures: a snapshot that raises is recorded and retried at
the next tick; after `max_failures` in a row the sampler stops and `error` says why.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

Snapshot = Callable[[float], list[dict[str, Any]]]


class Sampler:
    def __init__(
        self,
        snapshot: Snapshot,
        interval_s: float = 1.0,
        max_s: float = 3600.0,
        max_failures: int = 5,
    ) -> None:
        self._snapshot = snapshot
        self.interval_s = interval_s
        self.max_s = max_s
        self.max_failures = max_failures
        self.rows: list[dict[str, Any]] = []
        self.error: str | None = None
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="platform-sampler", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_s
        consecutive = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            tick = time.monotonic()
            try:
                self.rows.extend(self._snapshot(time.time()))
                consecutive = 0
            except Exception as e:  # noqa: BLE001 - any failure is recorded, never raised here
                consecutive += 1
                self.failures += 1
                self.error = str(e).splitlines()[0] if str(e) else type(e).__name__
                if consecutive >= self.max_failures:
                    return
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - tick)))

    def stop(self, timeout: float = 15.0) -> list[dict[str, Any]]:
        """Stop sampling and return the rows (oldest first)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return sorted(self.rows, key=lambda r: r["time"])
