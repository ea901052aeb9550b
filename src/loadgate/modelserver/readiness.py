"""The readiness rule with hysteresis: not ready above `max_queue`, ready again at `resume_queue`.

Hysteresis keeps a pod that hovers around the limit from flapping in and out of the proxy's
endpoints on every request. `max_queue == 0` disables the rule (always ready).
"""

from __future__ import annotations


class Readiness:
    def __init__(self, max_queue: int = 50, resume_queue: int = 25) -> None:
        if max_queue and resume_queue > max_queue:
            raise ValueError("resume_queue must not exceed max_queue")
        self.max_queue = max_queue
        self.resume_queue = resume_queue
        self.overloaded = False
        self.draining = False  # set on SIGTERM: a terminating pod leaves the endpoints

    def observe(self, queue: int) -> bool:
        """Update with the current queue depth; returns readiness."""
        if self.max_queue:
            if not self.overloaded and queue > self.max_queue:
                self.overloaded = True
            elif self.overloaded and queue <= self.resume_queue:
                self.overloaded = False
        return self.ready

    @property
    def ready(self) -> bool:
        return not self.overloaded and not self.draining
