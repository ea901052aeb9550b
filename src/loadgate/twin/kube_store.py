"""The emulated API's object store: every object with its resourceVersion, and a bounded history
of changes that list-then-watch clients read from (as the API server's watch cache).

Each change of an object's JSON takes the next resourceVersion and is recorded as an ADDED,
MODIFIED or DELETED change; a watch from a resourceVersion older than the history answers
410 Expired, as the API server does. Events are append-only and pruned oldest-first beyond a
bound (a cluster expires them after an hour).
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from loadgate.twin.kube_state import Key

HISTORY = 20_000  # changes kept for watches
MAX_EVENTS = 5_000  # Events kept


@dataclass(frozen=True)
class Change:
    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    key: Key
    obj: dict[str, Any]  # the object at this version (its last state for DELETED)
    prev: dict[str, Any] | None  # the version before (None for ADDED)


def _versioned(obj: dict[str, Any], rv: int) -> dict[str, Any]:
    return {**obj, "metadata": {**obj.get("metadata", {}), "resourceVersion": str(rv)}}


class ObjectStore:
    def __init__(self, history: int = HISTORY, max_events: int = MAX_EVENTS) -> None:
        self._cond = threading.Condition()
        self._rv = 1000  # any start; clients only compare them for equality
        self._bare: dict[Key, dict[str, Any]] = {}  # as built (compared on each sync)
        self._objects: dict[Key, dict[str, Any]] = {}  # with metadata.resourceVersion
        self._changes: deque[Change] = deque(maxlen=history)
        self._events: deque[Key] = deque()
        self._max_events = max_events
        self.closed = False

    @property
    def rv(self) -> int:
        with self._cond:
            return self._rv

    def _record(self, type_: str, key: Key, obj: dict[str, Any] | None) -> None:
        self._rv += 1
        prev = self._objects.get(key)
        if type_ == "DELETED":
            assert prev is not None
            versioned = _versioned(prev, self._rv)
            del self._objects[key], self._bare[key]
        else:
            assert obj is not None
            versioned = _versioned(obj, self._rv)
            self._objects[key], self._bare[key] = versioned, obj
        self._changes.append(Change(self._rv, type_, key, versioned, prev))

    def replace(self, current: dict[Key, dict[str, Any]]) -> None:
        """Make every object but Events what `current` says; record what changed."""
        with self._cond:
            before = self._rv
            for key, obj in current.items():
                old = self._bare.get(key)
                if old is None:
                    self._record("ADDED", key, obj)
                elif old is not obj and old != obj:
                    self._record("MODIFIED", key, obj)
            for key in [k for k in self._bare if k[0] != "events" and k not in current]:
                self._record("DELETED", key, None)
            if self._rv != before:
                self._cond.notify_all()

    def add_events(self, events: list[tuple[Key, dict[str, Any]]]) -> None:
        if not events:
            return
        with self._cond:
            for key, obj in events:
                self._record("ADDED", key, obj)
                self._events.append(key)
            while len(self._events) > self._max_events:  # expired: gone without a watch event
                old = self._events.popleft()
                self._objects.pop(old, None)
                self._bare.pop(old, None)
            self._cond.notify_all()

    def get(self, key: Key) -> dict[str, Any] | None:
        with self._cond:
            return self._objects.get(key)

    def items(self, resource: str) -> tuple[int, list[dict[str, Any]]]:
        """The current resourceVersion and every object of a resource, ordered by
        namespace and name (etcd's key order)."""
        with self._cond:
            keys = sorted(k for k in self._objects if k[0] == resource)
            return self._rv, [self._objects[k] for k in keys]

    def changes_after(self, rv: int) -> list[Change] | None:
        """Changes newer than `rv`; None when the history no longer reaches back to it."""
        with self._cond:
            if self._changes and rv < self._changes[0].rv - 1:
                return None
            if not self._changes and rv < self._rv:
                return None
            # resourceVersions are consecutive: the newest `_rv - rv` changes are the new ones
            new = list(itertools.islice(reversed(self._changes), max(0, self._rv - rv)))
            return new[::-1]

    def wait(self, rv: int, timeout: float) -> None:
        """Block until a change newer than `rv`, the store closing, or `timeout` s."""
        with self._cond:
            self._cond.wait_for(lambda: self._rv > rv or self.closed, timeout)

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()
