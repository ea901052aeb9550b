"""The simulated accelerator on the asyncio loop: queues from `batching`, durations from `latency`.

Requests wait on futures; a finished sequence or batch admits the next from the FIFO queue. Every
change of queue depth re-evaluates readiness, so the readiness rule reacts per request, not per
scrape.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from loadgate.modelserver.batching import BatchQueue, SlotQueue
from loadgate.modelserver.latency import LatencyModel, stream_plan
from loadgate.modelserver.metrics import ModelStats
from loadgate.modelserver.readiness import Readiness

LLM, CV = "llm", "cv"


class _Waiter:
    __slots__ = ("fut", "queued")

    def __init__(self, fut: asyncio.Future, queued: float) -> None:
        self.fut = fut
        self.queued = queued


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

    def record(self, model: str, ok: bool, started: float) -> None:
        s = self.stats[model]
        if ok:
            s.request_success += 1
        else:
            s.request_failure += 1
        s.request_duration_us += (self.now() - started) * 1e6

    # -- LLM: continuous batching --------------------------------------------------------------
    async def generate(
        self, prompt_tokens: int, max_tokens: int, chunk: int | None = None
    ) -> AsyncIterator[int]:
        """Yields token counts per message, each as soon as its last token exists."""
        s = self.stats[LLM]
        queued = self.now()
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
        start = self.now()
        s.queue_duration_us += (start - queued) * 1e6
        s.exec_count += 1
        s.count += 1
        self._sync()
        try:
            for offset, n in stream_plan(
                self.latency, prompt_tokens, max_tokens, chunk or self.chunk
            ):
                delay = start + offset - self.now()
                await asyncio.sleep(delay if delay > 0 else 0)
                yield n
        finally:
            s.compute_infer_duration_us += (self.now() - start) * 1e6
            self._release_llm()
            self._sync()

    def _release_llm(self) -> None:
        nxt = self.llm.finish()
        while nxt is not None and nxt.cancelled():  # its waiter is gone; it took no slot
            nxt = self.llm.finish()
        if nxt is not None:
            nxt.set_result(None)

    # -- CV: dynamic batching ------------------------------------------------------------------
    async def classify(self, images: int) -> None:
        """Returns when the batch holding this request has been computed."""
        s = self.stats[CV]
        done = _Waiter(asyncio.get_running_loop().create_future(), self.now())
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
        s.count += images

    def _run_batch(self, batch: list) -> None:
        s = self.stats[CV]
        now = self.now()
        for w, _ in batch:
            s.queue_duration_us += (now - w.queued) * 1e6
        s.exec_count += 1
        s.executing_count = len(batch)
        images = sum(n for _, n in batch)
        asyncio.get_running_loop().call_later(
            self.latency.cv_batch(images), self._batch_done, batch, now
        )

    def _batch_done(self, batch: list, started: float) -> None:
        s = self.stats[CV]
        s.compute_infer_duration_us += (self.now() - started) * 1e6
        s.executing_count = 0
        for w, _ in batch:
            if not w.fut.done():
                w.fut.set_result(None)
        nxt = self.cv.finish()
        if nxt:
            self._run_batch(nxt)
        self._sync()
