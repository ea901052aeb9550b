"""One call -> one sample row, over `h2_client` (Locust processes only: needs gevent).

`Proc` is one generator process's state: the scenario, each class's request serialized and
framed once, the constant part of the header blocks, the channel, the row buffer. `send` starts
a call and returns; the call's `done` (run by the connection's reader greenlet, or at once when
it cannot be sent) writes its row and fires Locust's request event. A stream message costs one
protobuf parse of the response, the profile's token reader and one timestamp append; TTFT is the
first message's arrival and the inter-token gaps are taken from the arrival times with numpy
once per call.
"""

from __future__ import annotations

import math
import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from tritonclient.grpc import service_pb2 as pb

from loadgate.observe.envoy_access import REQUEST_ID_HEADER
from loadgate.traffic import kserve, profiles
from loadgate.traffic.h2_client import Channel, header_block
from loadgate.traffic.h2_protocol import Call, grpc_message, grpc_timeout, request_headers
from loadgate.traffic.recorder import RowBuffer
from loadgate.traffic.scenario import Scenario, TrafficClass

NAN = math.nan
SERVICE = "/inference.GRPCInferenceService/"
INFER, STREAM_INFER = SERVICE + "ModelInfer", SERVICE + "ModelStreamInfer"
TRITON_GRPC_ERROR = "triton_grpc_error"  # stream header: errors as gRPC status (Triton 24.08+)
_STREAM_RESPONSE = pb.ModelStreamInferResponse.FromString
_UNARY_RESPONSE = pb.ModelInferResponse.FromString


class GrpcStatus(Exception):
    """Locust failure for a non-OK call; Locust groups failures by this text."""


class Proc:
    """State of one Locust process (each worker has its own after the fork)."""

    def __init__(self, scenario: Scenario, driven: bool) -> None:
        self.scenario = scenario
        self.driven = driven  # run by `loadgate run` (a controller walks the phases)
        # Each class's request, serialized and framed once: every call sends the same bytes.
        self.bodies = {
            c.name: grpc_message(kserve.build_request(c).SerializeToString())
            for c in scenario.classes
        }
        self.readers = {c.name: profiles.reader(c) for c in scenario.classes}
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.buffer = RowBuffer(self.worker)
        self.channel: Channel | None = None
        self.bases: dict[bool, bytes] = {}  # stream? -> constant part of the header block
        self.inflight: set[Call] = set()  # to cancel on stop
        self.calls = 0  # request ids are <worker tag>-<n>
        self.reset()

    def reset(self) -> None:
        self.buffer.worker = self.worker = f"{socket.gethostname()}:{os.getpid()}"
        # Unique across the processes and machines of a run: pid and a per-start nonce.
        self.rid_prefix = f"{os.getpid():x}{random.getrandbits(24):06x}-"
        self.stopping = False
        self.final_sent = False
        self.active = 0  # calls sent whose row is not written yet
        # Driven runs start in the first phase (the controller announces the next ones);
        # without a controller (Locust's web UI) the scenario's phases do not apply.
        self.phase = self.scenario.phases[0].name if self.driven else "ui"
        self.scheduling = False  # this process's open-loop stream is running
        # completed: the stream's whole schedule was walked (False: stopped before its end)
        self.stats = {"scheduled": 0, "sent": 0, "dropped": 0, "max_active": 0, "completed": False}

    def connect(self, host: str | None) -> None:
        if self.channel is not None:
            return
        target = (host or "").split("://", 1)[-1].rstrip("/")
        if not target:
            raise GrpcStatus("no target: pass --host HOST:PORT")
        client = self.scenario.client
        md = kserve.call_metadata(client)
        grpc_errors = ((TRITON_GRPC_ERROR, "true"),) if client.stream_grpc_errors else ()
        ch = self.channel = Channel(target, client.tls)
        self.bases = {
            False: request_headers(ch.scheme, ch.authority, INFER, md),
            True: request_headers(ch.scheme, ch.authority, STREAM_INFER, md + grpc_errors),
        }
        ch.connect()  # before the first scheduled send, so connection setup is not lag


PROC: Proc | None = None


@dataclass(slots=True)
class Attempt:
    """One call's figures while it runs; `_record` turns them into its row."""

    cls: TrafficClass
    intended: float  # latency and the deadline count from here
    start: float
    phase: str
    reader: profiles.Reader
    tokens: int = 0
    nbytes: int = 0
    status: str = "OK"
    error: str = ""  # the server's or gRPC's words when status is not OK (capped)
    times: list[float] = field(default_factory=list)  # arrival of each response message
    final: bool = False  # the last message was flagged triton_final_response
    request_id: str = ""  # sent as x-request-id: the proxy's access log names the call by it

    def stream_message(self, payload: bytes, now: float) -> None:
        self.times.append(now)
        msg = _STREAM_RESPONSE(payload)
        if msg.error_message:
            # in-band error (server without triton_grpc_error): no code, but its words
            self.status, self.error = "UNKNOWN", kserve.short_error(msg.error_message)
            return
        resp = msg.infer_response
        t, b = self.reader.figures(resp)
        self.tokens += t
        self.nbytes += b
        if self.reader.needs_final:
            self.final = profiles.is_final(resp)

    def unary_message(self, payload: bytes, now: float) -> None:
        self.times.append(now)  # a unary response's first byte is its end
        t, self.nbytes = self.reader.figures(_UNARY_RESPONSE(payload))
        self.tokens = t if self.cls.kind == "llm_unary" else 0


def send(
    proc: Proc,
    cls: TrafficClass,
    intended: float | None,
    phase: str,
    env,
    then: Callable[[], None] | None = None,
) -> Call:
    """Start one call and return; its row is written when it ends (`then` runs after that).
    `intended` None means now (closed loop). The caller counted it in `proc.active`."""
    start = time.time()
    proc.calls += 1
    a = Attempt(cls, start if intended is None else intended, start, phase, proc.readers[cls.name])
    a.request_id = f"{proc.rid_prefix}{proc.calls}"
    stream = cls.kind == "llm_stream"
    call = Call(a.stream_message if stream else a.unary_message, None, a)
    call.done = lambda c: _done(proc, a, env, c, then)
    if proc.stopping:  # handed over just before the stop: never sent
        call.ended, call.status = True, "CANCELLED"
        _done(proc, a, env, call, then)
        return call
    timeout = max(a.intended + cls.deadline_s - start, 0.001)
    block = header_block(proc.bases[stream], REQUEST_ID_HEADER, a.request_id, grpc_timeout(timeout))
    proc.inflight.add(call)
    proc.channel.start(call, block, proc.bodies[cls.name], timeout)
    return call


def _done(proc: Proc, a: Attempt, env, call: Call, then) -> None:
    proc.inflight.discard(call)
    try:
        if call.status != "OK":
            a.status, a.error = call.status, kserve.short_error(call.details)
        elif not a.times and a.cls.kind != "llm_stream" and a.status == "OK":
            a.status, a.error = "INTERNAL", "no response message"
        elif a.reader.needs_final and a.status == "OK" and not a.final:
            a.status, a.error = "UNKNOWN", "stream ended before its final response"
        _record(proc, a, env, call.headers)
    finally:
        proc.active -= 1
        if then is not None:
            then()


def _record(proc: Proc, a: Attempt, env, headers: dict[str, str] | None) -> None:
    """Write the call's one row and fire Locust's request event."""
    end = time.time()
    client = proc.scenario.client
    served = kserve.served_by(headers, client.served_by_header, client.served_by_fallback)
    itl_p50, itl_max = gap_figures(a.times)
    cls = a.cls
    proc.buffer.add(
        a.intended,
        a.start,
        a.times[0] if a.times else NAN,
        end,
        cls.name,
        cls.model,
        a.status,
        served,
        a.tokens,
        a.nbytes,
        a.phase,
        a.request_id,
        itl_p50,
        itl_max,
        a.error,
    )
    failure = f"{a.status}: {a.error}" if a.error else a.status  # Locust groups by this text
    env.events.request.fire(
        request_type="grpc",
        name=cls.name,
        response_time=(end - a.intended) * 1000.0,
        response_length=a.nbytes,
        response=None,
        context={"status": a.status, "served_by": served},
        exception=None if a.status == "OK" else GrpcStatus(failure),
    )


def gap_figures(times: list[float]) -> tuple[float, float]:
    """Median and largest gap between a stream's messages (NaN for fewer than 2 messages); the
    median of an even count is the upper middle gap."""
    if len(times) < 2:
        return NAN, NAN
    gaps = np.diff(times)
    gaps.sort()
    return float(gaps[len(gaps) // 2]), float(gaps[-1])
