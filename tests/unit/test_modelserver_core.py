"""The simulated accelerator's pure core: latency model, stream plan, batching queues, readiness."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadgate.modelserver.batching import BatchQueue, SlotQueue
from loadgate.modelserver.latency import LatencyModel, stream_plan
from loadgate.modelserver.readiness import Readiness

M = LatencyModel(prefill_base_s=0.01, prefill_per_token_s=0.001, decode_step_s=0.02)


def test_prefill_grows_with_prompt_and_everything_scales():
    assert M.prefill(100) > M.prefill(10) > M.prefill(0) == pytest.approx(0.01)
    fast = LatencyModel(time_scale=0.1, prefill_base_s=0.01, decode_step_s=0.02)
    assert fast.prefill(0) == pytest.approx(0.001)
    assert fast.decode(10) == pytest.approx(0.02)
    assert fast.cv_batch(8) == pytest.approx(LatencyModel().cv_batch(8) / 10)
    assert LatencyModel().cv_batch(8) < 0.050, "default CV batch must stay well under 50 ms"


def test_first_token_alone_at_prefill_end_then_chunks():
    plan = stream_plan(M, prompt_tokens=10, max_tokens=10, chunk=4)
    assert plan[0] == (pytest.approx(0.02), 1)  # TTFT = prefill, whatever the chunk
    assert [n for _, n in plan] == [1, 4, 4, 1]
    # A chunk leaves when its last token exists: token k (1-based) at prefill + (k-1) steps.
    assert [t for t, _ in plan] == pytest.approx(
        [0.02, 0.02 + 4 * 0.02, 0.02 + 8 * 0.02, 0.02 + 9 * 0.02]
    )


@given(
    prompt=st.integers(0, 4000),
    tokens=st.integers(1, 3000),
    chunk=st.integers(1, 64),
)
def test_stream_plan_sums_to_max_tokens_and_is_monotonic(prompt, tokens, chunk):
    plan = stream_plan(M, prompt, tokens, chunk)
    assert sum(n for _, n in plan) == tokens
    assert len(plan) == 1 + -(-(tokens - 1) // chunk)
    times = [t for t, _ in plan]
    assert times == sorted(times)
    assert times[-1] == pytest.approx(M.prefill(prompt) + M.decode(tokens - 1))


def test_slot_queue_runs_at_most_slots_and_admits_fifo():
    q = SlotQueue[str](slots=8)
    started = [r for r in (f"r{i}" for i in range(20)) if q.submit(r)]
    assert len(started) == 8 and q.running == 8 and list(q.waiting)[:2] == ["r8", "r9"]
    assert q.finish() == "r8"  # continuous batching: a finished sequence frees its slot at once
    assert q.running == 8 and len(q.waiting) == 11
    assert q.withdraw("r12") and not q.withdraw("r12")
    admitted = [q.finish() for _ in range(10)]
    assert admitted == ["r9", "r10", "r11", "r13", "r14", "r15", "r16", "r17", "r18", "r19"]
    assert q.finish() is None and q.running == 7


def test_new_request_waits_behind_queue_even_if_a_slot_is_free():
    q = SlotQueue[str](slots=1)
    assert q.submit("a") and not q.submit("b")
    q.running = 0  # a slot frees without admission having run yet: FIFO still holds
    assert not q.submit("c")


def test_batch_queue_batches_up_to_max_images_fifo():
    q = BatchQueue[str](max_batch=8)
    assert q.submit("first") == [("first", 1)]  # idle device: runs at once, alone
    for i in range(10):
        assert q.submit(f"r{i}") == []  # device busy: everything waits
    batch = q.finish()
    assert [x for x, _ in batch] == [f"r{i}" for i in range(8)]
    assert [x for x, _ in q.finish()] == ["r8", "r9"]
    assert q.finish() == [] and not q.busy


def test_batch_queue_counts_images_not_requests():
    q = BatchQueue[str](max_batch=8)
    q.submit("busy")
    q.submit("a", 5)
    q.submit("b", 4)  # 5 + 4 > 8: next batch
    q.submit("c", 3)
    assert q.finish() == [("a", 5)]
    assert q.finish() == [("b", 4), ("c", 3)]


def test_continuous_batching_drain_time_of_80_requests():
    """Discrete-event run of the slot queue: 80 equal requests, 8 slots -> 10 rounds, and the
    queue depth seen by the readiness rule goes 72, 64, ... 0."""
    q = SlotQueue[int](slots=8)
    running = [i for i in range(80) if q.submit(i)]
    depths = [len(q.waiting)]
    rounds = 1
    while q.running:
        nxt = [q.finish() for _ in range(q.running)]
        running = [r for r in nxt if r is not None]
        depths.append(len(q.waiting))
        rounds += bool(running)
    assert rounds == 10
    assert depths[:4] == [72, 64, 56, 48] and depths[-1] == 0


def test_readiness_hysteresis():
    r = Readiness(max_queue=50, resume_queue=25)
    seen = [r.observe(q) for q in [0, 50, 51, 49, 30, 26, 25, 40, 50, 51]]
    assert seen == [True, True, False, False, False, False, True, True, True, False]


def test_readiness_rule_disabled_and_draining():
    r = Readiness(max_queue=0, resume_queue=0)
    assert all(r.observe(q) for q in [0, 100, 10_000])
    r.draining = True
    assert not r.observe(0)


def test_readiness_rejects_resume_above_max():
    with pytest.raises(ValueError):
        Readiness(max_queue=10, resume_queue=20)
