"""What the chaos extension's pieces share inside one Chaos Toolkit process.

Chaos Toolkit calls each activity as a separate function with no way to hand one activity's
output to the next, so the control, the actions and the probes meet here: the run directory of
the background load, the chaos events recorded so far (also appended to `chaos_events.jsonl`
as they happen, so an interrupted run keeps them), running floods, the replica count to restore
and a cached platform. Everything is process-local and reset by `reset()`.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadgate.judge.names import CHAOS_SOURCE
from loadgate.schema import encode_labels

if TYPE_CHECKING:
    from loadgate.chaos.flood import Flood
    from loadgate.platform.base import Platform

EVENTS_FILE = "chaos_events.jsonl"


@dataclass
class Session:
    out_dir: Path | None = None  # the background load's run directory (samples, live chunks)
    events: list[dict[str, Any]] = field(default_factory=list)
    floods: dict[str, Flood] = field(default_factory=dict)  # tag -> flood
    targets: dict[str, str] = field(default_factory=dict)  # tag -> pod name an action picked
    replicas_before: int | None = None  # spec replicas before the first fault
    platforms: dict[str, Platform] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


_session = Session()


def current() -> Session:
    return _session


def reset(out_dir: Path | None = None) -> Session:
    """A fresh session (one per experiment); closes cached platforms."""
    global _session
    for p in _session.platforms.values():
        with contextlib.suppress(Exception):  # closing is best effort
            p.close()
    _session = Session(out_dir=out_dir)
    return _session


def event_row(metric: str, labels: dict[str, Any], value: float = 1.0, t: float | None = None):
    """One TIMELINE row (source "chaos"); the report draws it as a marker."""
    return {
        "time": time.time() if t is None else t,
        "source": CHAOS_SOURCE,
        "metric": metric,
        "labels": encode_labels(labels),
        "value": float(value),
    }


def mark(metric: str, value: float = 1.0, **labels: Any) -> dict[str, Any]:
    """Record a chaos event now (in memory and, when a run directory is set, on disk)."""
    row = event_row(metric, {k: v for k, v in labels.items() if v is not None}, value)
    s = current()
    with s.lock:
        s.events.append(row)
        if s.out_dir is not None:
            s.out_dir.mkdir(parents=True, exist_ok=True)
            with open(s.out_dir / EVENTS_FILE, "a") as f:
                f.write(json.dumps(row) + "\n")
    return row


def read_events(out_dir: Path) -> list[dict[str, Any]]:
    """Events appended to a run directory's chaos_events.jsonl (a torn last line is skipped)."""
    path = Path(out_dir) / EVENTS_FILE
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows
