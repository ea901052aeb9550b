"""Admission and batching of the simulated accelerator: pure state machines, no clock, no I/O.

`SlotQueue` is LLM continuous batching: up to `slots` sequences decode at once, a finished
sequence frees its slot for the oldest waiting one. `BatchQueue` is CV dynamic batching: when the
device is idle it takes the waiting requests in FIFO order up to `max_batch` images and runs them
as one batch. In both, whatever is not executing waits in a FIFO queue (`len(waiting)` is the
queue depth that the readiness rule and `nv_inference_pending_request_count` report).
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class SlotQueue(Generic[T]):
    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("slots must be >= 1")
        self.slots = slots
        self.running = 0
        self.waiting: deque[T] = deque()

    def submit(self, item: T) -> bool:
        """True when `item` may start now; otherwise it waits (FIFO) until `finish` admits it."""
        if self.running < self.slots and not self.waiting:
            self.running += 1
            return True
        self.waiting.append(item)
        return False

    def finish(self) -> T | None:
        """A running item is done; returns the waiting item that takes its slot, if any."""
        self.running -= 1
        if self.waiting:
            self.running += 1
            return self.waiting.popleft()
        return None

    def withdraw(self, item: T) -> bool:
        """Remove a waiting item (its client went away). False if it was not waiting."""
        try:
            self.waiting.remove(item)
        except ValueError:
            return False
        return True


class BatchQueue(Generic[T]):
    """Items are (payload, images) pairs; a batch holds at most `max_batch` images."""

    def __init__(self, max_batch: int) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self.max_batch = max_batch
        self.busy = False
        self.waiting: deque[tuple[T, int]] = deque()

    def submit(self, item: T, images: int = 1) -> list[tuple[T, int]]:
        """Queue an item; returns a batch to execute now when the device was idle, else []."""
        self.waiting.append((item, images))
        return [] if self.busy else self._take()

    def finish(self) -> list[tuple[T, int]]:
        """The running batch is done; returns the next batch (possibly [])."""
        self.busy = False
        return self._take()

    def withdraw(self, item: T) -> bool:
        for entry in self.waiting:
            if entry[0] is item:
                self.waiting.remove(entry)
                return True
        return False

    def _take(self) -> list[tuple[T, int]]:
        batch: list[tuple[T, int]] = []
        total = 0
        while self.waiting and (not batch or total + self.waiting[0][1] <= self.max_batch):
            entry = self.waiting.popleft()
            total += entry[1]
            batch.append(entry)
        self.busy = bool(batch)
        return batch
