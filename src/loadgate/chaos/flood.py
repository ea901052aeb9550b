"""A bounded burst of long inference calls, at the service or straight at one pod.

`requests` unary LLM calls (`max_tokens` each, so every call holds its slot) are fired at once
as gRPC futures on one channel; whatever is still running when the duration ends (or `stop()`
is called) is cancelled, and each call also carries a deadline a little past the duration. So a flood is bounded in
count AND in time whatever the stack does. Outcomes are counted per gRPC status, with the
latency of rejections (fail fast means milliseconds, not a deadline).
"""

from __future__ import annotations

import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import grpc
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc

from loadgate.errors import UserError
from loadgate.judge.names import REJECTED

MAX_REQUESTS = 5000
MAX_DURATION_S = 600.0
_DEADLINE_MARGIN_S = 5.0
WAIT_SLICE_S = 0.2  # how often a waiting main thread looks for a pending signal
_PROMPT = b"flood"


def flood_request(model: str, max_tokens: int) -> pb.ModelInferRequest:
    req = pb.ModelInferRequest(model_name=model)
    req.inputs.add(name="text_input", datatype="BYTES", shape=[1])
    req.raw_input_contents.append(struct.pack("<I", len(_PROMPT)) + _PROMPT)
    req.parameters["max_tokens"].int64_param = max_tokens
    return req


def check_bounds(requests: int, duration_s: float) -> None:
    if not 1 <= requests <= MAX_REQUESTS:
        raise UserError(f"flood requests must be in [1, {MAX_REQUESTS}] (got {requests})")
    if not 0 < duration_s <= MAX_DURATION_S:
        raise UserError(f"flood duration_s must be in (0, {MAX_DURATION_S:.0f}] (got {duration_s})")


@dataclass
class Flood:
    target: str  # host:port
    requests: int
    duration_s: float
    model: str = "llm"
    max_tokens: int = 2000
    pod: str | None = None  # the pod aimed at, when straight at one
    started: float = 0.0
    ended: float | None = None
    statuses: Counter = field(default_factory=Counter)
    rejection_ms: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    # An Event, not Thread.join/is_alive: a join interrupted by Ctrl-C (KeyboardInterrupt in the
    # main thread) can leave CPython reporting a live thread as stopped.
    _done: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        check_bounds(self.requests, self.duration_s)

    def start(self) -> Flood:
        self.started = time.time()
        self._thread = threading.Thread(target=self._run, name="loadgate-flood", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> Flood:
        """Wait for the flood to end, in short slices: a Ctrl-C that the kernel delivers to one
        of grpc's threads only runs its Python handler (KeyboardInterrupt in the main thread)
        once the main thread runs again, so one long wait would hold it for the whole flood
        (seen: a gameday that ignored SIGINT during a 120 s flood)."""
        if self._thread is not None:
            end = time.monotonic() + (self.duration_s + 10 if timeout is None else timeout)
            while not self._done.wait(WAIT_SLICE_S) and time.monotonic() < end:
                pass
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._done.is_set()

    def _run(self) -> None:
        channel = grpc.insecure_channel(
            self.target, options=[("grpc.use_local_subchannel_pool", 1)]
        )
        futures: list[grpc.Future] = []
        lock = threading.Lock()
        try:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            req = flood_request(self.model, self.max_tokens)

            def done(fut: grpc.Future, sent: float) -> None:
                status = _status(fut)
                with lock:
                    self.statuses[status] += 1
                    if status in REJECTED:
                        self.rejection_ms.append((time.time() - sent) * 1000.0)

            for _ in range(self.requests):
                if self._stop.is_set():
                    break
                sent = time.time()
                # ended by an explicit cancel at the duration (the server sees the stream reset
                # and frees the work); the deadline is only a backstop if that cancel is lost
                fut = stub.ModelInfer.future(req, timeout=self.duration_s + _DEADLINE_MARGIN_S)
                fut.add_done_callback(lambda f, s=sent: done(f, s))
                futures.append(fut)
            self._stop.wait(max(0.0, self.started + self.duration_s - time.time()))
        finally:
            for fut in futures:
                fut.cancel()  # no-op on finished calls; counted CANCELLED otherwise
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not all(f.done() for f in futures):
                time.sleep(0.02)
            channel.close()
            self.ended = time.time()
            self._done.set()

    def result(self) -> dict:
        rej = sorted(self.rejection_ms)
        p99 = rej[min(len(rej) - 1, int(0.99 * len(rej)))] if rej else None
        return {
            "target": self.target,
            "pod": self.pod,
            "requests": self.requests,
            "duration_s": self.duration_s,
            "started": self.started,
            "ended": self.ended,
            "statuses": dict(self.statuses),
            "rejection_p99_ms": p99,
        }


def _status(fut: grpc.Future) -> str:
    if fut.cancelled():
        return "CANCELLED"
    try:
        err = fut.exception()
    except grpc.FutureCancelledError:
        return "CANCELLED"
    if err is None:
        return "OK"
    code = err.code() if hasattr(err, "code") else None
    return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
