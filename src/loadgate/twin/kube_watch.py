"""Watches (`?watch=true`) over the store: the JSON lines the API server streams, one event per
line, until the watch's time is up, the store closes or the client goes away.

Without a resourceVersion (or with "0") the watch starts with a synthetic ADDED per current
object, then follows changes; from a resourceVersion it replays the changes after it, or sends
one ERROR event (410 Expired) when the history no longer reaches back, as the API server does.
An object that starts or stops matching the selector arrives as ADDED or DELETED.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from kubernetes import client

from loadgate.twin.kube_discovery import status
from loadgate.twin.kube_selectors import Selection
from loadgate.twin.kube_store import Change, ObjectStore

POLL_S = 1.0  # longest wait between checks of the deadline


def line(type_: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": type_, "object": obj}, separators=(",", ":")).encode() + b"\n"


def seen_as(change: Change, sel: Selection) -> str | None:
    """How a change looks through a selector: its type, ADDED/DELETED for an object entering
    or leaving the selection, None when the watcher does not see it."""
    now = sel.matches(change.obj)
    if change.type == "MODIFIED":
        before = change.prev is not None and sel.matches(change.prev)
        if before and now:
            return "MODIFIED"
        return "ADDED" if now else "DELETED" if before else None
    return change.type if now else None


def expired(rv: int) -> bytes:
    gone = status(410, f"too old resource version: {rv}")
    return line("ERROR", client.ApiClient().sanitize_for_serialization(gone))


def watch(
    store: ObjectStore, resource: str, sel: Selection, since: int | None, duration_s: float
) -> Iterator[bytes]:
    """The event lines of one watch, for at most `duration_s` seconds."""
    deadline = time.monotonic() + duration_s
    if since is None:
        rv, objs = store.items(resource)
        for obj in objs:
            if sel.matches(obj):
                yield line("ADDED", obj)
    else:
        rv = since
    while not store.closed:
        changes = store.changes_after(rv)
        if changes is None:
            yield expired(rv)
            return
        for c in changes:
            rv = c.rv
            type_ = seen_as(c, sel) if c.key[0] == resource else None
            if type_ is not None:
                yield line(type_, c.obj)
        left = deadline - time.monotonic()
        if left <= 0:
            return
        store.wait(rv, min(left, POLL_S))
