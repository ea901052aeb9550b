"""Locust users over KServe v2 gRPC: one call -> one sample row.

Runs ONLY inside Locust's processes: importing this module imports Locust (which monkey-patches
the process with gevent). Never import it from the gate, pytest or chaoslib; they drive Locust
through `loadgate.traffic.runner` instead.

`OpenLoopUser` sends on a schedule into a bounded pool (open loop); `ClosedLoopUser` subclasses,
one per traffic class, call-wait-repeat (closed loop, Locust's web UI). Calls go through
`calls.send` over loadgate's own HTTP/2 client (`h2_client`), so a call holds no greenlet while
it runs. `finish_worker` ends a process's part of the run: cancel in-flight calls, wait for their
rows, ship everything left. Shipping, collecting and the controller are in `control`.
"""

from __future__ import annotations

import bisect
import os
import random
import time
from pathlib import Path

import locust  # noqa: F401 - first: Locust's gevent monkey patching

# isort: split
import gevent
from gevent.event import Event
from locust import User, between, constant, task

from loadgate.traffic import calls
from loadgate.traffic.calls import Proc
from loadgate.traffic.scenario import Scenario, TrafficClass, load_scenario
from loadgate.traffic.schedule import arrivals

ROWS, FINAL, STOP, PHASE = "loadgate_rows", "loadgate_final", "loadgate_stop", "loadgate_phase"
SHIP_EVERY_S = 1.0  # worker -> master; with the master's 1 s live flush rows are on disk <= 2 s
DRAIN_S = 5.0  # how long a stopping worker waits for cancelled calls to record their rows


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
        bound = sc.generator.pool_size
        pick, st, send = _picker(sc.classes), proc.stats, calls.send
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
            send(proc, pick(rng), due, phase, env)
        else:
            st["completed"] = True
        deadline = time.monotonic() + sc.max_deadline_s + DRAIN_S
        while proc.active > 0 and time.monotonic() < deadline:
            gevent.sleep(0.05)
        finish_worker(env)
        while True:  # schedule done: hold until the controller ends the run
            gevent.sleep(3600)


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
        ended = Event()
        call = calls.send(proc, self.traffic_class, None, proc.phase, self.environment, ended.set)
        try:
            ended.wait()
        except gevent.GreenletExit:  # Locust killed the user mid-call (web UI stop, quit)
            proc.channel.cancel(call)  # its row says CANCELLED
            raise


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
    PROC = calls.PROC = Proc(sc, driven)
    return user_classes(sc, open_loop=driven and sc.open_loop)


# -- worker side: ship rows, finish ----------------------------------------------------------


def finish_worker(env) -> None:
    """Stop sending, cancel in-flight calls, ship every remaining row once."""
    proc = PROC
    if proc is None or proc.stopping:
        return  # already finishing (stop message, end of schedule and test_stop can all call)
    proc.stopping = True
    for call in list(proc.inflight):
        proc.channel.cancel(call)
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
