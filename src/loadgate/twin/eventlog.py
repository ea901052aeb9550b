"""The twin's memory of what happened: lifecycle events and timeline rows, thread-safe.

Events are `loadgate.platform.base.Event`s (what `Platform.events()` returns); every event is also
a timeline row, and gauges (readiness, replicas, autoscaler metric) are timeline rows only, so one
`frame()` gives the TIMELINE contract of `loadgate.schema`.

Timeline rows the twin writes (source / metric / labels -> value):
- twin / pod_event / {pod, address, reason, message} -> 1   (Created, Started, Ready, NotReady,
  Killed, Exited, Deleted)
- twin / pod_ready / {pod, address} -> 1 or 0
- twin / replicas_spec, replicas_ready / {deployment} -> count
- autoscaler / autoscaler_metric / {scaledobject} -> query value (NaN when empty)
- autoscaler / autoscaler_desired / {scaledobject, reason, current, applied} -> desired replicas
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict
from typing import Any

import pandas as pd

from loadgate.platform.base import Event, event_row
from loadgate.schema import TIMELINE_COLUMNS, empty_timeline, encode_labels

_MAX_ROWS = 200_000  # a bound on memory for a twin left running for days


class EventLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # wakes readers such as the kube API
        self._events: list[Event] = []
        self._rows: list[tuple[float, str, str, str, float]] = []
        self._recorded = 0  # events + rows ever recorded (a change counter)
        self._events_total = 0  # events ever recorded (trimming does not lower it)

    def event(self, kind: str, name: str, reason: str, message: str = "", **fields: Any) -> Event:
        ev = Event(time.time(), kind, name, reason, message, fields)
        row = event_row(ev, _source(kind))
        with self._lock:
            self._events.append(ev)
            self._events_total += 1
            self._rows.append(tuple(row[c] for c in TIMELINE_COLUMNS))
            self._after_record()
        return ev

    def metric(self, source: str, metric: str, labels: dict[str, Any], value: float | None) -> None:
        v = math.nan if value is None else float(value)
        with self._lock:
            self._rows.append((time.time(), source, metric, encode_labels(labels), v))
            self._after_record()

    def _after_record(self) -> None:
        """Under the lock: count the change, wake waiters, bound the memory."""
        self._recorded += 1
        self._changed.notify_all()
        if len(self._rows) > _MAX_ROWS:
            del self._rows[: len(self._rows) - _MAX_ROWS]
        if len(self._events) > _MAX_ROWS:
            del self._events[: len(self._events) - _MAX_ROWS]

    def events(self, since: float = 0.0) -> list[Event]:
        with self._lock:
            return [e for e in self._events if e.time >= since]

    def wait_change(self, seen: int, timeout: float) -> int:
        """Block until something was recorded after change count `seen` (or `timeout` s);
        returns the current count."""
        with self._changed:
            self._changed.wait_for(lambda: self._recorded != seen, timeout)
            return self._recorded

    def events_after(self, count: int) -> tuple[list[Event], int]:
        """Events recorded after the first `count` ever recorded, and the new total (pass it
        back next time: O(new events), unlike `events(since)`)."""
        with self._lock:
            new = min(self._events_total - count, len(self._events))
            return (self._events[len(self._events) - new :] if new > 0 else []), self._events_total

    def rows(self, since: float = 0.0) -> list[dict[str, Any]]:
        with self._lock:
            picked = [r for r in self._rows if r[0] >= since]
        return [dict(zip(TIMELINE_COLUMNS, r, strict=True)) for r in picked]

    def frame(self, since: float = 0.0) -> pd.DataFrame:
        rows = self.rows(since)
        if not rows:
            return empty_timeline()
        return pd.DataFrame(rows, columns=TIMELINE_COLUMNS)


def _source(kind: str) -> str:
    return "autoscaler" if kind == "autoscaler" else "twin"


def event_to_dict(ev: Event) -> dict[str, Any]:
    return asdict(ev)
