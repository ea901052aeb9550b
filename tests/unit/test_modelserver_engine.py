"""The accelerator engine on a virtual-time event loop: exact timings, no real sleeps.

`VirtualTimeLoop` jumps its clock to the next timer instead of waiting, so a simulated minute runs
in milliseconds and every time asserted below is exact.
"""

from __future__ import annotations

import asyncio
import selectors

import pytest

from loadgate.modelserver.engine import Accelerator, Timing
from loadgate.modelserver.latency import LatencyModel
from loadgate.modelserver.readiness import Readiness

LAT = LatencyModel(prefill_base_s=0.01, prefill_per_token_s=0.001, decode_step_s=0.02)


class _JumpSelector(selectors.DefaultSelector):
    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None

    def select(self, timeout=None):
        if timeout and self.loop is not None:
            self.loop.virtual_now += timeout
        return super().select(0)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        sel = _JumpSelector()
        super().__init__(sel)
        sel.loop = self
        self.virtual_now = 0.0

    def time(self) -> float:
        return self.virtual_now


def run(coro_fn):
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(coro_fn())
    finally:
        loop.close()


def accelerator(slots=8, chunk=1, max_queue=50, resume=25) -> Accelerator:
    return Accelerator(LAT, slots, Readiness(max_queue, resume), chunk)


async def collect(acc: Accelerator, prompt: int, tokens: int) -> list[tuple[float, int]]:
    out = []
    async for n in acc.generate(prompt, tokens):
        out.append((acc.now(), n))
    return out


def test_ttft_is_prefill_and_chunks_follow_the_plan():
    acc = accelerator(chunk=16)

    async def main():
        return await collect(acc, prompt=100, tokens=50)

    msgs = run(main)
    assert msgs[0] == (pytest.approx(0.11), 1)  # 10 ms + 100 x 1 ms, first token alone
    assert sum(n for _, n in msgs) == 50 and len(msgs) == 5  # 1 + 16 + 16 + 16 + 1
    assert msgs[-1][0] == pytest.approx(0.11 + 49 * 0.02)
    assert acc.stats["llm"].exec_count == 1 and acc.llm.running == 0


def test_80_sequences_on_8_slots_drain_in_10_rounds_with_readiness_hysteresis():
    acc = accelerator()
    per_request = LAT.prefill(0) + LAT.decode(99)  # 100 tokens
    samples: list[tuple[float, int, bool]] = []

    async def watch():
        for _ in range(60):
            samples.append((acc.now(), acc.queue_depth(), acc.readiness.ready))
            await asyncio.sleep(per_request / 4)

    async def main():
        w = asyncio.ensure_future(watch())
        ends = await asyncio.gather(*(collect(acc, 0, 100) for _ in range(80)))
        w.cancel()
        return [m[-1][0] for m in ends]

    ends = run(main)
    assert max(ends) == pytest.approx(10 * per_request)
    assert sorted(ends)[7] == pytest.approx(per_request)  # the first 8 ran at once
    assert max(q for _, q, _ in samples) == 72
    # Not ready while the queue is above 50, still not ready between 26 and 50, ready at <= 25.
    for _, q, ready in samples:
        if q > 50:
            assert not ready
    first_ready_again = next(i for i, (_, q, r) in enumerate(samples) if r and i > 0)
    assert samples[first_ready_again][1] <= 25
    assert any(26 <= q <= 50 and not r for _, q, r in samples)
    assert acc.stats["llm"].request_success == 0  # recorded by the gRPC layer, not the engine
    assert acc.stats["llm"].pending_request_count == 0 and acc.llm.running == 0


def test_cv_dynamic_batches_of_8_fifo():
    acc = accelerator()
    done_at: dict[int, float] = {}

    async def one(i):
        t = Timing(acc.now())
        await acc.classify(1, t)
        acc.finish("cv", t, 1)
        done_at[i] = acc.now()

    async def main():
        await asyncio.gather(*(one(i) for i in range(17)))

    run(main)
    b1, b8 = LAT.cv_batch(1), LAT.cv_batch(8)
    assert done_at[0] == pytest.approx(b1)  # an idle device does not wait to fill a batch
    assert {round(done_at[i], 9) for i in range(1, 9)} == {round(b1 + b8, 9)}
    assert {round(done_at[i], 9) for i in range(9, 17)} == {round(b1 + 2 * b8, 9)}
    assert acc.stats["cv"].exec_count == 3 and acc.stats["cv"].count == 17
    assert {size: n for size, (n, _) in acc.stats["cv"].batches.items()} == {1: 1, 8: 2}


def test_cancelled_requests_leave_the_queue_and_free_their_slot():
    acc = accelerator(slots=1)

    async def main():
        running = asyncio.ensure_future(collect(acc, 0, 1000))
        queued = [asyncio.ensure_future(collect(acc, 0, 10)) for _ in range(3)]
        await asyncio.sleep(0.1)
        assert acc.llm.running == 1 and acc.queue_depth() == 3
        queued[0].cancel()
        await asyncio.sleep(0)
        assert acc.queue_depth() == 2
        running.cancel()  # client went away mid-generation
        results = await asyncio.gather(*queued[1:])
        return acc.now(), results

    t, results = run(main)
    assert all(sum(n for _, n in r) == 10 for r in results)
    assert t < 1.0, "the cancelled 1000-token sequence must not hold its slot"
    assert acc.llm.running == 0 and acc.queue_depth() == 0


def test_cancel_racing_with_admission_keeps_slot_count_exact():
    """A waiter cancelled in the same tick as the slot it waited for is released: the slot goes to
    the next waiter and is counted once."""
    acc = accelerator(slots=1)

    async def main():
        first = asyncio.ensure_future(collect(acc, 0, 2))
        racer = asyncio.ensure_future(collect(acc, 0, 10))
        last = asyncio.ensure_future(collect(acc, 0, 3))
        await asyncio.sleep(0.001)
        assert acc.llm.running == 1 and acc.queue_depth() == 2
        first.cancel()  # its slot is released when its task runs next...
        racer.cancel()  # ...and finds the racer's future cancelled but still queued: skipped
        out = await last
        return out

    out = run(main)
    assert sum(n for _, n in out) == 3
    assert acc.llm.running == 0 and acc.queue_depth() == 0


def test_requests_are_counted_as_triton_counts_them():
    """Done: a success with queue + compute == request (one clock, exact here). Cancelled in the
    queue: a failure with reason CANCELED and no inference. Cancelled while decoding: a success
    timed until the cancellation. Every request's figures are taken when it ends."""
    acc = accelerator(slots=1)
    s = acc.stats["llm"]

    async def one(tokens: int) -> None:
        t = Timing(acc.now())
        try:
            async for _ in acc.generate(0, tokens, timing=t):
                pass
        finally:
            acc.finish("llm", t, 1)

    async def main():
        long = asyncio.ensure_future(one(1000))
        done = asyncio.ensure_future(one(10))  # waits for the slot
        queued = asyncio.ensure_future(one(10))
        await asyncio.sleep(0.5)
        queued.cancel()
        await asyncio.sleep(0)
        assert s.failure["CANCELED"] == 1 and s.count == 0 and s.request_ns == 0
        long.cancel()  # mid-generation, at 0.5 s
        await done
        return acc.now()

    end = run(main)
    assert (s.request_success, s.request_failure, s.count, s.exec_count) == (2, 1, 2, 2)
    assert s.failure_ns == 500_000_000  # the cancelled one waited 0.5 s
    short = LAT.prefill(0) + LAT.decode(9)
    assert end == pytest.approx(0.5 + short)
    # the long one: 0.5 s of compute; the short one: 0.5 s queued, then its own compute
    assert s.compute_infer_ns == pytest.approx((0.5 + short) * 1e9, abs=10)
    assert s.queue_ns == pytest.approx(0.5e9, abs=10)
    assert s.request_ns == pytest.approx(s.queue_ns + s.compute_infer_ns, abs=10)
    assert s.batches == {1: [2, s.compute_infer_ns]}
