"""Locust users over KServe v2 gRPC and the plumbing that turns their calls into sample rows.

Runs ONLY inside Locust's processes: importing this module imports Locust (which monkey-patches
the process with gevent) and switches grpc to gevent. Never import it from the gate, pytest or
chaoslib; they drive Locust through `loadgate.traffic.runner` instead.

Roles (Locust runners): a worker (or the local runner) sends calls and ships rows to the master
every second with the custom message `loadgate_rows`; on stop it cancels in-flight calls and
sends everything left with `loadgate_final`. The master (or local runner) collects rows, writes
live chunks and samples.parquet. When driven by `loadgate run` (LOADGATE_DRIVER=1) a controller
on the master walks the phases and ends the run in order: stop workers, await their finals,
write the file, quit.
"""

from __future__ import annotations

import bisect
import contextlib
import math
import os
import random
import socket
import time
from pathlib import Path

import locust  # noqa: F401 - first: Locust's gevent monkey patching
from grpc.experimental import gevent as grpc_gevent

grpc_gevent.init_gevent()  # before any channel exists, or calls serialize

import gevent  # noqa: E402
import gevent.pool  # noqa: E402
import grpc  # noqa: E402
from locust import User, between, constant, events, task  # noqa: E402
from locust.runners import MasterRunner, WorkerRunner  # noqa: E402
from tritonclient.grpc import service_pb2_grpc as pb_grpc  # noqa: E402

from loadgate.traffic import kserve  # noqa: E402
from loadgate.traffic.recorder import Collector, RowBuffer  # noqa: E402
from loadgate.traffic.scenario import Scenario, TrafficClass, load_scenario  # noqa: E402
from loadgate.traffic.schedule import arrivals, expected_arrivals  # noqa: E402

ROWS, FINAL, STOP, PHASE = "loadgate_rows", "loadgate_final", "loadgate_stop", "loadgate_phase"
SHIP_EVERY_S = 1.0  # worker -> master; with the master's 1 s live flush rows are on disk <= 2 s
DRAIN_S = 5.0  # how long a stopping worker waits for cancelled calls to record their rows
NAN = math.nan


class GrpcStatus(Exception):
    """Locust failure for a non-OK call; Locust groups failures by this text."""


class Proc:
    """State of one Locust process (each worker has its own after the fork)."""

    def __init__(self, scenario: Scenario, driven: bool) -> None:
        self.scenario = scenario
        self.driven = driven  # run by `loadgate run` (a controller walks the phases)
        self.requests = {c.name: kserve.build_request(c) for c in scenario.classes}
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.buffer = RowBuffer(self.worker)
        self.stub = None
        self.md: tuple = ()
        self.inflight: set = set()  # streaming grpc calls, to cancel on stop
        self.unary: set = set()  # greenlets blocked in a unary call, to kill on stop
        self.reset()

    def reset(self) -> None:
        self.buffer.worker = self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.stopping = False
        self.final_sent = False
        self.active = 0  # calls handed to a greenlet whose row is not written yet
        # Driven runs start in the first phase (the controller announces the next ones);
        # without a controller (Locust's web UI) the scenario's phases do not apply.
        self.phase = self.scenario.phases[0].name if self.driven else "ui"
        self.stats = {"scheduled": 0, "sent": 0, "dropped": 0, "max_active": 0}

    def connect(self, host: str | None) -> None:
        if self.stub is not None:
            return
        target = (host or "").split("://", 1)[-1].rstrip("/")
        if not target:
            raise GrpcStatus("no target: pass --host HOST:PORT")
        client = self.scenario.client
        self.md = kserve.call_metadata(client)
        channel = kserve.open_channel(target, client)
        # Connect before the first scheduled send, so connection setup is not counted as lag.
        with contextlib.suppress(grpc.FutureTimeoutError):
            grpc.channel_ready_future(channel).result(timeout=5)
        self.stub = pb_grpc.GRPCInferenceServiceStub(channel)


PROC: Proc | None = None
COLLECTOR: Collector | None = None


def _out_dir() -> Path:
    out = os.environ.get("LOADGATE_OUT")
    if out:
        return Path(out)
    return Path("reports") / time.strftime("locust-%Y%m%dT%H%M%SZ", time.gmtime())


# -- one call -> one row ---------------------------------------------------------------------


def run_call(proc: Proc, cls: TrafficClass, intended: float | None, phase: str, env) -> None:
    """Send one call, record exactly one row (also when cancelled or killed), fire Locust's
    request event. Latency counts from `intended` (None: now, closed loop); the deadline too."""
    start = time.time()
    if intended is None:
        intended = start
    first, tokens, nbytes, status, md, call = NAN, 0, 0, "OK", None, None
    gaps: list[float] = []
    unary = None
    client = proc.scenario.client
    try:
        if proc.stopping:
            status = "CANCELLED"  # handed over just before the stop: never sent
            return
        timeout = max(intended + cls.deadline_s - start, 0.001)
        req = proc.requests[cls.name]
        if cls.kind == "llm_stream":
            call = proc.stub.ModelStreamInfer(iter((req,)), timeout=timeout, metadata=proc.md)
            proc.inflight.add(call)
            last = NAN
            for msg in call:
                now = time.time()
                if first != first:
                    first = now
                else:
                    gaps.append(now - last)
                last = now
                if msg.error_message:
                    status = "UNKNOWN"  # in-stream error: Triton sends no code with it
                    continue
                t, b = kserve.response_figures(msg.infer_response)
                tokens += t
                nbytes += b
        else:
            # Blocking with_call costs ~25 % less CPU than future() under gevent; a stop kills
            # this greenlet instead of cancelling a future (see finish_worker).
            unary = gevent.getcurrent()
            proc.unary.add(unary)
            resp, call = proc.stub.ModelInfer.with_call(req, timeout=timeout, metadata=proc.md)
            first = time.time()
            t, nbytes = kserve.response_figures(resp)
            tokens = t if cls.kind == "llm_unary" else 0
    except gevent.GreenletExit:
        status = "CANCELLED"  # killed mid-call: Locust stopping a user, or our stop
        if call is not None:
            call.cancel()
        raise
    except Exception as e:  # grpc.RpcError (also a Call: it holds the initial metadata)
        status = kserve.status_name(e)
        if call is None and hasattr(e, "initial_metadata"):
            call = e
    finally:
        end = time.time()
        if unary is not None:
            proc.unary.discard(unary)
        if call is not None:
            proc.inflight.discard(call)
            try:
                md = call.initial_metadata()
            except Exception:
                md = None
        served = kserve.served_by(
            kserve.metadata_dict(md), client.served_by_header, client.served_by_fallback
        )
        itl_p50, itl_max = _gap_figures(gaps)
        proc.buffer.add(
            intended,
            start,
            first,
            end,
            cls.name,
            cls.model,
            status,
            served,
            tokens,
            nbytes,
            phase,
            itl_p50,
            itl_max,
        )
        env.events.request.fire(
            request_type="grpc",
            name=cls.name,
            response_time=(end - intended) * 1000.0,
            response_length=nbytes,
            response=None,
            context={"status": status, "served_by": served},
            exception=None if status == "OK" else GrpcStatus(status),
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
        sc = proc.scenario
        proc.connect(env.host)
        streams = max(int(getattr(env.parsed_options, "lg_streams", 1) or 1), 1)
        stream = getattr(env.runner, "worker_index", 0) % streams
        seed = sc.generator.seed
        rng = random.Random(None if seed is None else seed * 1009 + stream)
        pool = gevent.pool.Pool(sc.generator.pool_size)
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
            if pool.full():
                st["dropped"] += 1
                continue
            st["sent"] += 1
            proc.active += 1
            st["max_active"] = max(st["max_active"], proc.active)
            pool.spawn(_pooled_call, proc, pick(rng), due, phase, env)
        pool.join(timeout=sc.max_deadline_s + DRAIN_S)
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
    me = gevent.getcurrent()
    for g in list(proc.unary):
        if g is not me:
            g.kill(block=False)  # its run_call records the CANCELLED row
    deadline = time.monotonic() + DRAIN_S
    while proc.active > 0 and time.monotonic() < deadline:
        gevent.sleep(0.02)
    proc.final_sent = True
    stats = {**proc.stats, "rows": proc.buffer.total, "unfinished": proc.active}
    env.runner.send_message(
        FINAL, {"worker": proc.worker, "cols": proc.buffer.take(), "stats": stats}
    )


def _shipper(env) -> None:
    while True:
        gevent.sleep(SHIP_EVERY_S)
        proc = PROC
        if proc is not None and proc.buffer.rows and not proc.final_sent:
            env.runner.send_message(ROWS, {"worker": proc.worker, "cols": proc.buffer.take()})


# -- master side: collect, write, drive ------------------------------------------------------


def _live_writer() -> None:
    while True:
        gevent.sleep(0.25)
        if COLLECTOR is not None:
            COLLECTOR.flush_live()


def _stop_requested() -> bool:
    path = os.environ.get("LOADGATE_STOP_FILE")
    return bool(path) and os.path.exists(path)


def _wait(seconds: float, done=lambda: False, stoppable: bool = True) -> bool:
    """Sleep up to `seconds` or until done(); True when cut short by a stop request."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if stoppable and _stop_requested():
            return True
        if done():
            return False
        gevent.sleep(0.1)
    return False


def _controller(env) -> None:
    """Walk the phases (closed loop) or await the open-loop streams, then end in order."""
    sc, runner = PROC.scenario, env.runner
    expected = runner.worker_count if isinstance(runner, MasterRunner) else 1
    started = time.time()
    stopped = False
    if sc.open_loop:
        limit = sc.duration_s + sc.max_deadline_s + DRAIN_S + 10
        stopped = _wait(limit, done=lambda: COLLECTOR.finals >= expected)
    else:
        for ph in sc.phases:
            runner.send_message(PHASE, ph.name)
            runner.start(ph.users, spawn_rate=ph.spawn_rate or max(ph.users, 1))
            if _wait(ph.duration_s):
                stopped = True
                break
    runner.send_message(STOP, None)
    _wait(DRAIN_S + 10, done=lambda: COLLECTOR.finals >= expected, stoppable=False)
    COLLECTOR.finish(
        {
            "scenario": sc.name,
            "arrival": sc.arrival,
            "expected_arrivals": expected_arrivals(sc.phases) if sc.open_loop else None,
            "streams": expected,
            "finals": COLLECTOR.finals,
            "stopped_early": stopped,
            "started": started,
            "ended": time.time(),
        }
    )
    runner.quit()


# -- Locust event hooks ----------------------------------------------------------------------


@events.init_command_line_parser.add_listener
def _args(parser) -> None:
    parser.add_argument(
        "--lg-streams",
        type=int,
        default=1,
        include_in_web_ui=False,
        help="loadgate: number of open-loop streams (users) sharing the scenario's rate",
    )


@events.init.add_listener
def _init(environment, **_kw) -> None:
    global COLLECTOR
    runner = environment.runner
    if runner is None:
        return
    if not isinstance(runner, WorkerRunner):
        COLLECTOR = Collector(_out_dir())
        runner.register_message(
            ROWS, lambda environment, msg, **kw: COLLECTOR.add(msg.data["cols"])
        )
        runner.register_message(
            FINAL,
            lambda environment, msg, **kw: COLLECTOR.add_final(
                msg.data["worker"], msg.data["cols"], msg.data["stats"]
            ),
        )
        gevent.spawn(_live_writer)
    if not isinstance(runner, MasterRunner):
        runner.register_message(STOP, lambda environment, msg, **kw: finish_worker(environment))
        runner.register_message(
            PHASE, lambda environment, msg, **kw: setattr(PROC, "phase", msg.data)
        )
        gevent.spawn(_shipper, environment)


@events.test_start.add_listener
def _test_start(environment, **_kw) -> None:
    runner = environment.runner
    if not isinstance(runner, MasterRunner) and PROC is not None:
        PROC.reset()
    if not isinstance(runner, WorkerRunner) and os.environ.get("LOADGATE_DRIVER") == "1":
        gevent.spawn(_controller, environment)


@events.test_stop.add_listener
def _test_stop(environment, **_kw) -> None:
    runner = environment.runner
    if not isinstance(runner, MasterRunner):
        finish_worker(environment)
    if not isinstance(runner, WorkerRunner) and COLLECTOR is not None and not COLLECTOR.written:
        COLLECTOR.finish({"scenario": PROC.scenario.name if PROC else "", "ended": time.time()})
