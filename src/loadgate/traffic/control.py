"""Locust plumbing around the users: row shipping, the master's collector, the controller
that walks a scenario's phases, and the Locust event hooks. Runs only inside Locust's processes
(imported by `users`).

Worker (or local runner): ships rows to the master every second (`loadgate_rows`); on
`loadgate_stop` or test stop it finishes (`users.finish_worker`: cancel, drain, `loadgate_final`).
Master (or local runner): collects rows, writes live chunks and samples.parquet. When driven by
`loadgate run` (LOADGATE_DRIVER=1) the controller ends the run in order: stop the workers, await
every final message, write the file, quit.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import gevent
from locust import events
from locust.runners import MasterRunner, WorkerRunner

from loadgate.traffic import users
from loadgate.traffic.recorder import LOAD_STARTED_FILE, Collector
from loadgate.traffic.schedule import expected_arrivals
from loadgate.traffic.users import DRAIN_S, FINAL, PHASE, ROWS, SHIP_EVERY_S, STOP, finish_worker

COLLECTOR: Collector | None = None


def _out_dir() -> Path:
    out = os.environ.get("LOADGATE_OUT")
    if out:
        return Path(out)
    return Path("reports") / time.strftime("locust-%Y%m%dT%H%M%SZ", time.gmtime())


def _shipper(env) -> None:
    while True:
        gevent.sleep(SHIP_EVERY_S)
        proc = users.PROC
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
    sc, runner = users.PROC.scenario, env.runner
    expected = runner.worker_count if isinstance(runner, MasterRunner) else 1
    started = time.time()
    # Callers time their actions (chaos, gate checks) from when load really starts, which is
    # seconds after Locust was launched on a busy machine.
    marker = COLLECTOR.out_dir / LOAD_STARTED_FILE
    marker.with_name(".started.tmp").write_text(f"{started:.6f}\n")
    os.replace(marker.with_name(".started.tmp"), marker)
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
    parser.add_argument(
        "--lg-scenario",
        default="",
        include_in_web_ui=False,
        help="loadgate: the master's scenario fingerprint; a worker with another one sends nothing",
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
            PHASE, lambda environment, msg, **kw: setattr(users.PROC, "phase", msg.data)
        )
        gevent.spawn(_shipper, environment)


@events.test_start.add_listener
def _test_start(environment, **_kw) -> None:
    global COLLECTOR
    runner = environment.runner
    if COLLECTOR is not None and COLLECTOR.written:  # a new test from the web UI: fresh rows
        COLLECTOR = Collector(_out_dir())
    if not isinstance(runner, MasterRunner) and users.PROC is not None:
        users.PROC.reset()
    if not isinstance(runner, WorkerRunner) and os.environ.get("LOADGATE_DRIVER") == "1":
        gevent.spawn(_controller, environment)


@events.test_stop.add_listener
def _test_stop(environment, **_kw) -> None:
    runner = environment.runner
    if not isinstance(runner, MasterRunner):
        finish_worker(environment)
    if not isinstance(runner, WorkerRunner) and COLLECTOR is not None and not COLLECTOR.written:
        COLLECTOR.finish(
            {"scenario": users.PROC.scenario.name if users.PROC else "", "ended": time.time()}
        )
