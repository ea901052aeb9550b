"""Locust users over KServe v2 gRPC: one call -> one sample row.

Runs ONLY inside Locust's processes: importing this module imports Locust (which monkey-patches
the process with gevent) and switches grpc to gevent. Never import it from the gate, pytest or
chaoslib; they drive Locust through `loadgate.traffic.runner` instead.

`OpenLoopUser` sends on a schedule into a bounded pool (open loop); `ClosedLoopUser` subclasses,
one per traffic class, call-wait-repeat (closed loop, Locust's web UI). `finish_worker` ends a
process's part of the run: cancel in-flight calls, wait for their rows, ship everything left.
Shipping, collecting and the controller are in `control`.
"""

from __future__ import annotations

import bisect
import contextlib
import math
import os
import random
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import locust  # noqa: F401 - first: Locust's gevent monkey patching
from grpc.experimental import gevent as grpc_gevent

grpc_gevent.init_gevent()  # before any channel exists, or calls serialize

import gevent  # noqa: E402
import gevent.pool  # noqa: E402
import grpc  # noqa: E402
from locust import User, between, constant, task  # noqa: E402
from tritonclient.grpc import service_pb2 as pb  # noqa: E402
from tritonclient.grpc import service_pb2_grpc as pb_grpc  # noqa: E402

from loadgate.observe.envoy_access import REQUEST_ID_HEADER  # noqa: E402
from loadgate.traffic import kserve, profiles  # noqa: E402
from loadgate.traffic.recorder import RowBuffer  # noqa: E402
from loadgate.traffic.scenario import Scenario, TrafficClass, load_scenario  # noqa: E402
from loadgate.traffic.schedule import arrivals  # noqa: E402

ROWS, FINAL, STOP, PHASE = "loadgate_rows", "loadgate_final", "loadgate_stop", "loadgate_phase"
SHIP_EVERY_S = 1.0  # worker -> master; with the master's 1 s live flush rows are on disk <= 2 s
DRAIN_S = 5.0  # how long a stopping worker waits for cancelled calls to record their rows
NAN = math.nan
STREAM_METHOD = "/inference.GRPCInferenceService/ModelStreamInfer"
TRITON_GRPC_ERROR = "triton_grpc_error"  # stream header: errors as gRPC status (Triton 24.08+)


class GrpcStatus(Exception):
    """Locust failure for a non-OK call; Locust groups failures by this text."""


class Proc:
    """State of one Locust process (each worker has its own after the fork)."""

    def __init__(self, scenario: Scenario, driven: bool) -> None:
        self.scenario = scenario
        self.driven = driven  # run by `loadgate run` (a controller walks the phases)
        self.requests = {c.name: kserve.build_request(c) for c in scenario.classes}
        self.readers = {c.name: profiles.reader(c) for c in scenario.classes}
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.buffer = RowBuffer(self.worker)
        self.stub = None
        self.stream_infer = None
        self.md: tuple = ()
        self.stream_md: tuple = ()
        self.inflight: set = set()  # grpc calls (futures and streams), to cancel on stop
        self.calls = 0  # request ids are <worker tag>-<n>
        self.reset()

    def reset(self) -> None:
        self.buffer.worker = self.worker = f"{socket.gethostname()}:{os.getpid()}"
        # Unique across the processes and machines of a run: host, pid and a per-start nonce.
        self.rid_prefix = f"{os.getpid():x}{random.getrandbits(24):06x}-"
        self.stopping = False
        self.final_sent = False
        self.active = 0  # calls sent or handed to a greenlet whose row is not written yet
        # Driven runs start in the first phase (the controller announces the next ones);
        # without a controller (Locust's web UI) the scenario's phases do not apply.
        self.phase = self.scenario.phases[0].name if self.driven else "ui"
        self.scheduling = False  # this process's open-loop stream is running
        # completed: the stream's whole schedule was walked (False: stopped before its end)
        self.stats = {"scheduled": 0, "sent": 0, "dropped": 0, "max_active": 0, "completed": False}

    def connect(self, host: str | None) -> None:
        if self.stub is not None:
            return
        target = (host or "").split("://", 1)[-1].rstrip("/")
        if not target:
            raise GrpcStatus("no target: pass --host HOST:PORT")
        client = self.scenario.client
        self.md = kserve.call_metadata(client)
        grpc_errors = ((TRITON_GRPC_ERROR, "true"),) if client.stream_grpc_errors else ()
        self.stream_md = self.md + grpc_errors
        channel = kserve.open_channel(target, client)
        # Connect before the first scheduled send, so connection setup is not counted as lag.
        with contextlib.suppress(grpc.FutureTimeoutError):
            grpc.channel_ready_future(channel).result(timeout=5)
        self.stub = pb_grpc.GRPCInferenceServiceStub(channel)
        # ModelStreamInfer is a bidi stream, but each of our streams carries one request: as a
        # unary-stream call the request and the half-close leave in one batch. The stub's
        # stream-stream call needs a request-consumer thread (a greenlet here) per stream, which
        # costs CPU and, when the hub is busy, sends the half-close late (a proxy that waits for
        # the whole request, like the twin's breaker, then answers late). Same bytes on the wire.
        self.stream_infer = channel.unary_stream(
            STREAM_METHOD,
            request_serializer=pb.ModelInferRequest.SerializeToString,
            response_deserializer=pb.ModelStreamInferResponse.FromString,
        )


PROC: Proc | None = None


# -- one call -> one row ---------------------------------------------------------------------


@dataclass(slots=True)
class Attempt:
    """One call's figures while it runs; `_record` turns them into its row."""

    cls: TrafficClass
    intended: float  # latency and the deadline count from here
    start: float
    phase: str
    first: float = NAN
    tokens: int = 0
    nbytes: int = 0
    status: str = "OK"
    error: str = ""  # the server's or gRPC's words when status is not OK (capped)
    gaps: list[float] = field(default_factory=list)
    call: object = None  # the grpc call, for its initial metadata (served_by) and cancelling
    request_id: str = ""  # sent as x-request-id: the proxy's access log names the call by it


def _attempt(proc: Proc, cls: TrafficClass, intended: float | None, phase: str) -> Attempt:
    start = time.time()
    proc.calls += 1
    a = Attempt(cls, start if intended is None else intended, start, phase)
    a.request_id = f"{proc.rid_prefix}{proc.calls}"
    return a


def _metadata(base: tuple, a: Attempt) -> tuple:
    return (*base, (REQUEST_ID_HEADER, a.request_id))


def run_call(proc: Proc, cls: TrafficClass, intended: float | None, phase: str, env) -> None:
    """Send one call and block until it ends; record exactly one row (also when cancelled or
    killed). `intended` None means now (closed loop)."""
    a = _attempt(proc, cls, intended, phase)
    try:
        if proc.stopping:
            a.status = "CANCELLED"  # handed over just before the stop: never sent
            return
        if cls.kind == "llm_stream":
            _stream(proc, a)
        else:
            # future(), not the blocking with_call(): with_call is ~25 % cheaper in CPU, but under
            # gevent it delivered fast rejections seconds late while many slow calls were pending
            # (every UNAVAILABLE "took" 3-8 s, all arriving together when slow calls finished).
            _start_unary(proc, a)
            _unary_figures(proc, a, a.call.result())
    except gevent.GreenletExit:
        a.status = "CANCELLED"  # Locust killed the user mid-call (web UI stop, quit)
        if a.call is not None:
            a.call.cancel()
        raise
    except Exception as e:  # grpc.RpcError (a Call: holds the initial metadata), cancelled future
        a.status, a.error = kserve.status_name(e), kserve.error_text(e)
        if a.call is None and hasattr(e, "initial_metadata"):
            a.call = e
    finally:
        _record(proc, a, env)


def send_unary(proc: Proc, cls: TrafficClass, intended: float, phase: str, env) -> None:
    """Open loop: start a unary call and return; grpc's channel-spin greenlet writes its row
    when it ends. No greenlet blocked in result() per call: ~30 % less CPU per call under
    gevent, which is what lets one process hold a schedule near its closed-loop capacity.
    The caller counted the call in `proc.active`; whoever writes the row uncounts it."""
    a = _attempt(proc, cls, intended, phase)
    try:
        _start_unary(proc, a)
    except Exception as e:  # not even started (e.g. a closed channel)
        a.status, a.error = kserve.status_name(e), kserve.error_text(e)
        _unary_done(proc, a, env, None)
        return
    a.call.add_done_callback(lambda call: _unary_done(proc, a, env, call))


def _unary_done(proc: Proc, a: Attempt, env, call) -> None:
    try:
        if call is not None:
            _unary_figures(proc, a, call.result())
    except Exception as e:  # the call itself is the RpcError; FutureCancelledError when cancelled
        a.status, a.error = kserve.status_name(e), kserve.error_text(e)
    finally:
        try:
            _record(proc, a, env)
        finally:
            proc.active -= 1


def _timeout(a: Attempt) -> float:
    return max(a.intended + a.cls.deadline_s - a.start, 0.001)


def _start_unary(proc: Proc, a: Attempt) -> None:
    a.call = proc.stub.ModelInfer.future(
        proc.requests[a.cls.name], timeout=_timeout(a), metadata=_metadata(proc.md, a)
    )
    proc.inflight.add(a.call)


def _unary_figures(proc: Proc, a: Attempt, resp) -> None:
    a.first = time.time()  # a unary response's first byte is its end
    tokens, a.nbytes = proc.readers[a.cls.name].figures(resp)
    a.tokens = tokens if a.cls.kind == "llm_unary" else 0


def _stream(proc: Proc, a: Attempt) -> None:
    req = proc.requests[a.cls.name]
    a.call = proc.stream_infer(req, timeout=_timeout(a), metadata=_metadata(proc.stream_md, a))
    proc.inflight.add(a.call)
    reader = proc.readers[a.cls.name]
    figures, resp = reader.figures, None
    last = NAN
    for msg in a.call:
        now = time.time()
        if a.first != a.first:
            a.first = now
        else:
            a.gaps.append(now - last)
        last = now
        if msg.error_message:
            # in-band error (server without triton_grpc_error): no code, but its words
            a.status, a.error = "UNKNOWN", kserve.short_error(msg.error_message)
            continue
        resp = msg.infer_response
        t, b = figures(resp)
        a.tokens += t
        a.nbytes += b
    if reader.needs_final and a.status == "OK" and (resp is None or not profiles.is_final(resp)):
        a.status, a.error = "UNKNOWN", "stream ended before its final response"


def _record(proc: Proc, a: Attempt, env) -> None:
    """Write the call's one row and fire Locust's request event."""
    end, md = time.time(), None
    if a.call is not None:
        proc.inflight.discard(a.call)
        try:
            md = a.call.initial_metadata()
        except Exception:
            md = None
    client = proc.scenario.client
    served = kserve.served_by(
        kserve.metadata_dict(md), client.served_by_header, client.served_by_fallback
    )
    itl_p50, itl_max = _gap_figures(a.gaps)
    cls = a.cls
    proc.buffer.add(
        a.intended,
        a.start,
        a.first,
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


def _gap_figures(gaps: list[float]) -> tuple[float, float]:
    """Median and largest gap between a stream's messages (NaN for fewer than 2 messages)."""
    if not gaps:
        return NAN, NAN
    ordered = sorted(gaps)
    return ordered[len(ordered) // 2], ordered[-1]


def _picker(classes: list[TrafficClass]):
    total, cum = 0.0, []
    for c in classes:
        total += c.weight
        cum.append(total)
    return lambda rng: classes[min(bisect.bisect_right(cum, rng.random() * total), len(cum) - 1)]


# -- users -----------------------------------------------------------------------------------


class OpenLoopUser(User):
    """One open-loop arrival stream: calls start at their scheduled time in a bounded pool.

    Run one per worker process; `--lg-streams N` (the number of such users in the whole run)
    gives each its 1/N share of the rate, and the worker index picks its slice.
    """

    abstract = True
    wait_time = constant(0)

    @task
    def schedule(self) -> None:
        proc, env = PROC, self.environment
        if proc.scheduling:
            # Locust's master hands a lost worker's user to the workers left; this process
            # already runs its own stream and cannot resume the lost one's: stay idle (the lost
            # stream shows as an incomplete schedule in the summary).
            while True:
                gevent.sleep(3600)
        proc.scheduling = True
        sc = proc.scenario
        if getattr(env.parsed_options, "lg_scenario", "") not in ("", sc.fingerprint()):
            # A worker started elsewhere with another scenario file: its arrivals would not be
            # the master's schedule. Send nothing; the summary names it.
            proc.stats["scenario_mismatch"] = True
            finish_worker(env)
            while True:
                gevent.sleep(3600)
        proc.connect(env.host)
        streams = max(int(getattr(env.parsed_options, "lg_streams", 1) or 1), 1)
        stream = getattr(env.runner, "worker_index", 0) % streams
        seed = sc.generator.seed
        rng = random.Random(None if seed is None else seed * 1009 + stream)
        streams_pool = gevent.pool.Group()  # streams need a greenlet each; unary calls do not
        bound = sc.generator.pool_size
        pick, st = _picker(sc.classes), proc.stats
        t0 = time.time() + 0.2  # all streams start together
        for offset, phase in arrivals(sc.phases, sc.arrival, stream, streams, rng):
            due = t0 + offset
            delay = due - time.time()
            if delay > 0:
                gevent.sleep(delay)
            if proc.stopping:
                break
            proc.phase = phase
            st["scheduled"] += 1
            if proc.active >= bound:
                st["dropped"] += 1
                continue
            st["sent"] += 1
            proc.active += 1
            st["max_active"] = max(st["max_active"], proc.active)
            cls = pick(rng)
            if cls.kind == "llm_stream":
                streams_pool.spawn(_pooled_call, proc, cls, due, phase, env)
            else:
                send_unary(proc, cls, due, phase, env)
        else:
            st["completed"] = True
        deadline = time.monotonic() + sc.max_deadline_s + DRAIN_S
        while proc.active > 0 and time.monotonic() < deadline:
            gevent.sleep(0.05)
        finish_worker(env)
        while True:  # schedule done: hold until the controller ends the run
            gevent.sleep(3600)


def _pooled_call(proc: Proc, cls: TrafficClass, due: float, phase: str, env) -> None:
    try:
        run_call(proc, cls, due, phase, env)
    finally:
        proc.active -= 1


class ClosedLoopUser(User):
    """Classic Locust user: one call of its class, wait, repeat (works in Locust's web UI)."""

    abstract = True
    traffic_class: TrafficClass

    @task
    def call(self) -> None:
        proc = PROC
        if proc.stopping:
            gevent.sleep(0.2)
            return
        proc.connect(self.environment.host)
        proc.stats["sent"] += 1
        proc.active += 1
        try:
            run_call(proc, self.traffic_class, None, proc.phase, self.environment)
        finally:
            proc.active -= 1


def user_classes(scenario: Scenario, open_loop: bool) -> dict[str, type[User]]:
    """User classes for a locustfile's namespace: one open-loop stream, or one closed-loop
    class per traffic class (weights from the scenario)."""
    if open_loop:
        return {"OpenLoopUser": type("OpenLoopUser", (OpenLoopUser,), {"abstract": False})}
    out = {}
    for c in scenario.classes:
        name = "".join(p.capitalize() for p in c.name.replace("_", "-").split("-")) + "User"
        out[name] = type(
            name,
            (ClosedLoopUser,),
            {
                "abstract": False,
                "traffic_class": c,
                "weight": max(1, round(c.weight * 10)),
                "wait_time": between(*scenario.closed.wait_s),
            },
        )
    return out


def setup(scenario_path: str | Path) -> dict[str, type[User]]:
    """Load the scenario for this process and return the user classes to export."""
    global PROC
    sc = load_scenario(scenario_path)
    driven = os.environ.get("LOADGATE_DRIVER") == "1"
    PROC = Proc(sc, driven)
    return user_classes(sc, open_loop=driven and sc.open_loop)


# -- worker side: ship rows, finish ----------------------------------------------------------


def finish_worker(env) -> None:
    """Stop sending, cancel in-flight calls, ship every remaining row once."""
    proc = PROC
    if proc is None or proc.stopping:
        return  # already finishing (stop message, end of schedule and test_stop can all call)
    proc.stopping = True
    for call in list(proc.inflight):
        call.cancel()
    deadline = time.monotonic() + DRAIN_S
    while proc.active > 0 and time.monotonic() < deadline:
        gevent.sleep(0.02)
    proc.final_sent = True
    stats = {**proc.stats, "rows": proc.buffer.total, "unfinished": proc.active}
    env.runner.send_message(
        FINAL, {"worker": proc.worker, "cols": proc.buffer.take(), "stats": stats}
    )


# Locust event hooks and the master-side controller live in `control`; importing it registers
# them (it imports this module back, which is complete by now).
from loadgate.traffic import control  # noqa: E402, F401
