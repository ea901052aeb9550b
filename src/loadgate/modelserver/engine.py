"""The simulated accelerator on the asyncio loop: queues from `batching`, durations from `latency`.

Requests wait on futures; a finished sequence or batch admits the next from the FIFO queue. Every
change of queue depth re-evaluates readiness, so the readiness rule reacts per request, not per
scrape. A request's `Timing` records when it queued, started and stopped executing; `finish`
counts it once it has ended (see `metrics` for how Triton counts).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from loadgate.modelserver.batching import BatchQueue, SlotQueue
from loadgate.modelserver.latency import LatencyModel, stream_plan
from loadgate.modelserver.metrics import ModelStats
from loadgate.modelserver.readiness import Readiness

LLM, CV = "llm", "cv"


class Timing:
    """One request's moments on the loop clock (None: not reached)."""

    __slots__ = ("arrival", "queued", "exec_start", "exec_end")

    def __init__(self, arrival: float) -> None:
        self.arrival = arrival
        self.queued: float | None = None
        self.exec_start: float | None = None
        self.exec_end: float | None = None


def _ns(seconds: float) -> int:
    return max(int(seconds * 1e9), 0)


class _Waiter:
    __slots__ = ("fut", "timing")

    def __init__(self, fut: asyncio.Future, timing: Timing) -> None:
        self.fut = fut
        self.timing = timing


class Accelerator:
    def __init__(
        self, latency: LatencyModel, max_batch_size: int, readiness: Readiness, chunk: int
    ) -> None:
        self.latency = latency
        self.chunk = chunk
        self.readiness = readiness
        self.llm = SlotQueue[asyncio.Future](max_batch_size)
        self.cv = BatchQueue[_Waiter](max_batch_size)
        self.stats = {LLM: ModelStats(), CV: ModelStats()}

    @staticmethod
    def now() -> float:
        # The loop's clock (monotonic), so tests can run the engine on a virtual-time loop.
        return asyncio.get_running_loop().time()

    # -- queue bookkeeping -------------------------------------------------------------------
    def queue_depth(self) -> int:
        return len(self.llm.waiting) + len(self.cv.waiting)

    def _sync(self) -> None:
        self.stats[LLM].pending_request_count = len(self.llm.waiting)
        self.stats[LLM].executing_count = self.llm.running
        self.stats[CV].pending_request_count = len(self.cv.waiting)
        self.readiness.observe(self.queue_depth())

    def finish(self, model: str, t: Timing, items: int) -> None:
        """A request that reached the device ended (done or cancelled): a failure with reason
        CANCELED if it never executed, else a success timed until now."""
        s = self.stats[model]
        end = self.now()
        if t.exec_start is None:
            s.fail("CANCELED", _ns(end - t.arrival))
        else:
            exec_end = end if t.exec_end is None else t.exec_end
            s.success(
                items,
                _ns(end - t.arrival),
                _ns(t.exec_start - (t.arrival if t.queued is None else t.queued)),
                _ns(exec_end - t.exec_start),
            )
        s.last_inference_ms = int(time.time() * 1000)

    # -- LLM: continuous batching --------------------------------------------------------------
    async def generate(
        self,
        prompt_tokens: int,
        max_tokens: int,
        chunk: int | None = None,
        timing: Timing | None = None,
    ) -> AsyncIterator[int]:
        """Yields token counts per message, each as soon as its last token exists."""
        s = self.stats[LLM]
        t = timing or Timing(self.now())
        t.queued = self.now()
        admit = asyncio.get_running_loop().create_future()
        if not self.llm.submit(admit):
            self._sync()
            try:
                await admit
            except asyncio.CancelledError:
                if admit.cancelled():  # still waiting, or skipped by _release_llm already
                    self.llm.withdraw(admit)
                else:  # admitted in the same tick as the cancellation: give the slot back
                    self._release_llm()
                self._sync()
                raise
        start = t.exec_start = self.now()
        self._sync()
        try:
            for offset, n in stream_plan(
                self.latency, prompt_tokens, max_tokens, chunk or self.chunk
            ):
                delay = start + offset - self.now()
                await asyncio.sleep(delay if delay > 0 else 0)
                yield n
        finally:
            t.exec_end = self.now()
            s.executed(1, _ns(t.exec_end - start))  # a sequence: batch size 1, as TRT-LLM reports
            self._release_llm()
            self._sync()

    def _release_llm(self) -> None:
        nxt = self.llm.finish()
        while nxt is not None and nxt.cancelled():  # its waiter is gone; it took no slot
            nxt = self.llm.finish()
        if nxt is not None:
            nxt.set_result(None)

    # -- CV: dynamic batching ------------------------------------------------------------------
    async def classify(self, images: int, timing: Timing | None = None) -> None:
        """Returns when the batch holding this request has been computed."""
        t = timing or Timing(self.now())
        t.queued = self.now()
        done = _Waiter(asyncio.get_running_loop().create_future(), t)
        batch = self.cv.submit(done, images)
        if batch:
            self._run_batch(batch)
        self._sync()
        try:
            await done.fut
        except asyncio.CancelledError:
            self.cv.withdraw(done)
            self._sync()
            raise

    def _run_batch(self, batch: list) -> None:
        s = self.stats[CV]
        now = self.now()
        for w, _ in batch:
            w.timing.exec_start = now
        s.executing_count = len(batch)
        images = sum(n for _, n in batch)
        asyncio.get_running_loop().call_later(
            self.latency.cv_batch(images), self._batch_done, batch, now
        )

    def _batch_done(self, batch: list, started: float) -> None:
        s = self.stats[CV]
        now = self.now()
        s.executed(sum(n for _, n in batch), _ns(now - started))
        s.executing_count = 0
        for w, _ in batch:
            w.timing.exec_end = now
            if not w.fut.done():
                w.fut.set_result(None)
        nxt = self.cv.finish()
        if nxt:
            self._run_batch(nxt)
        self._sync()
