"""Run a scenario: Locust headless in its own processes, samples and summary in a run directory.

Locust monkey-patches its process with gevent, so it never runs in the caller's process (pytest
and chaoslib share that one). The caller's side only starts `python -m locust` with loadgate's
locustfile, watches the live chunks for progress, asks for an orderly stop by creating a stop
file (the controller inside Locust then cancels in-flight calls and writes every row), and reads
samples.parquet back.

    result = run_scenario(load_scenario("loadtests/scenarios/mixed.yaml"), "127.0.0.1:8001",
                          "reports/x", processes=2, progress=print)
    handle = start_scenario(scenario, target, out_dir)   # background load (chaos control)
    ...; result = handle.stop().wait()
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pandas as pd
import pyarrow.parquet as pq
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc

from loadgate import hostport
from loadgate.errors import UserError, one_line
from loadgate.procs import spawn, stop
from loadgate.schema import read_samples
from loadgate.traffic import kserve, profiles
from loadgate.traffic.live import read_recent
from loadgate.traffic.recorder import (
    GENERATOR_FILE,
    LIVE_DIR,
    LOAD_STARTED_FILE,
    SAMPLES_FILE,
    TOKEN_GAPS_FILE,
)
from loadgate.traffic.scenario import Scenario
from loadgate.traffic.summary import SUMMARY_FILE, format_table, progress_line, summarize

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
PROGRESS_EVERY_S = 2.0
STOP_GRACE_S = 30.0  # after a stop request: cancel, drain (5 s), collect, write, quit
Progress = Callable[[str], None]


@dataclass(frozen=True)
class RemoteWorkers:
    """Locust master mode: `count` workers started elsewhere (`loadgate worker`) connect to
    bind_host:bind_port; the load waits up to `max_wait_s` for all of them."""

    count: int
    bind_host: str = "0.0.0.0"  # Locust's default: workers come from other machines
    bind_port: int = 5557
    max_wait_s: float = 120.0


class RunFailed(RuntimeError):
    """Locust exited without writing samples (its log is in the run directory)."""


@dataclass
class RunResult:
    out_dir: Path
    samples_path: Path
    samples: pd.DataFrame
    summary: dict
    started: float
    ended: float
    locust_csv_prefix: Path
    locust_html: Path
    exit_code: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def table(self) -> str:
        return format_table(self.summary)


def check_target(target: str, scenario: Scenario, timeout: float = 5.0) -> None:
    """UserError (one line) unless `target` answers gRPC and each LLM class's profile fits its
    model; run before any load starts."""
    hostport.parse(target, "target")
    kserve.call_metadata(scenario.client)  # a missing env var is reported now, not per call
    channel = kserve.open_channel(target, scenario.client)
    try:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        md = kserve.call_metadata(scenario.client)
        stub.ServerLive(pb.ServerLiveRequest(), timeout=timeout, metadata=md)
        profiles.check_classes(stub, scenario, md, timeout)  # UserError: a profile does not fit
    except grpc.RpcError as e:
        if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            raise UserError(unreachable(target, e.code().name, e.details() or "")) from None
        # Anything else (UNIMPLEMENTED, UNAUTHENTICATED...) means a gRPC server answered.
    finally:
        channel.close()


def unreachable(target: str, code: str, details: str) -> str:
    """One true line for a target that did not answer gRPC: gRPC's own words after its
    boilerplate, cut at a word, and whether something else answered (not HTTP/2)."""
    why = details.rpartition("last error: ")[2] or details
    why = re.sub(r"^[A-Z_]+: ", "", why)  # gRPC's inner code repeats or contradicts the outer
    if "Failed parsing HTTP/2" in why or "http1.x" in why:
        return f"target {target} answers, but not with gRPC (HTTP/2): {one_line(why, 160)}"
    return f"target {target} is unreachable ({code}: {one_line(why, 160)})"


def locust_command(
    scenario: Scenario,
    target: str,
    out_dir: Path,
    processes: int,
    remote: RemoteWorkers | None = None,
) -> list[str]:
    streams = remote.count if remote else processes  # one open-loop stream per worker process
    if scenario.open_loop:
        users, rate = streams, streams
    else:
        first = scenario.phases[0]
        users, rate = first.users or 0, first.spawn_rate or max(first.users or 1, 1)
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless"]
    cmd += ["--host", target, "-u", str(users), "-r", str(rate)]
    cmd += ["--csv", str(out_dir / "locust"), "--html", str(out_dir / "locust.html")]
    cmd += ["--only-summary", "--lg-streams", str(streams if scenario.open_loop else 1)]
    cmd += ["--lg-scenario", scenario.fingerprint()]
    if remote:
        cmd += ["--master", "--expect-workers", str(remote.count)]
        cmd += ["--master-bind-host", remote.bind_host, "--master-bind-port", str(remote.bind_port)]
        cmd += ["--expect-workers-max-wait", str(int(remote.max_wait_s))]
    elif processes > 1:
        cmd += ["--processes", str(processes)]
    return cmd


def worker_command(master_host: str, master_port: int, processes: int = 1) -> list[str]:
    """A Locust worker for a master started with RemoteWorkers (run by `loadgate worker`)."""
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker"]
    cmd += ["--master-host", master_host, "--master-port", str(master_port)]
    if processes > 1:
        cmd += ["--processes", str(processes)]
    return cmd


def driver_env(scenario_path: Path) -> dict[str, str]:
    """Environment of a Locust process that runs loadgate's users for `loadgate run`."""
    return {
        **_environ(),
        "LOADGATE_SCENARIO": str(scenario_path),
        "LOADGATE_DRIVER": "1",
        "PYTHONUNBUFFERED": "1",
    }


class RunHandle:
    """A scenario running in the background. `stop()` asks for an orderly end; `wait()` returns
    the RunResult (and stops the run when a stop_event or the safety limit says so)."""

    def __init__(
        self,
        scenario: Scenario,
        target: str,
        out_dir: Path,
        processes: int,
        remote: RemoteWorkers | None = None,
    ) -> None:
        self.scenario, self.target, self.out_dir = scenario, target, out_dir
        self.processes, self.remote = processes, remote
        self.stop_file = out_dir / ".stop"
        self.log_path = out_dir / "locust.log"
        self.started = time.time()
        self._stop_asked_at: float | None = None
        _clear_previous(out_dir)
        (out_dir / "scenario.yaml").write_text(scenario.to_yaml())
        env = {
            **driver_env(out_dir / "scenario.yaml"),
            "LOADGATE_OUT": str(out_dir),
            "LOADGATE_STOP_FILE": str(self.stop_file),
        }
        self.proc: subprocess.Popen = spawn(
            locust_command(scenario, target, out_dir, processes, remote), self.log_path, env=env
        )
        # Past this the run is stuck: ask it to stop, and kill it STOP_GRACE_S later.
        waiting = remote.max_wait_s if remote else 0.0
        self.limit = self.started + waiting + scenario.duration_s + scenario.max_deadline_s + 60

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    @property
    def load_started(self) -> float | None:
        """Epoch s when the load really began (Locust booted, controller running); None before.
        `started` is when Locust was launched, which can be seconds earlier."""
        try:
            return float((self.out_dir / LOAD_STARTED_FILE).read_text())
        except (OSError, ValueError):
            return None

    def wait_load_started(self, timeout: float = 60.0) -> float:
        """Block until the load began; RunFailed if Locust exits or `timeout` passes first."""
        deadline = time.monotonic() + timeout
        while (t := self.load_started) is None:
            if not self.running:
                raise RunFailed(f"Locust exited before the load started; see {self.log_path}")
            if time.monotonic() > deadline:
                raise RunFailed(f"load did not start within {timeout:.0f}s; see {self.log_path}")
            time.sleep(0.1)
        return t

    def stop(self) -> RunHandle:
        """Ask for an orderly stop: in-flight calls end CANCELLED, every row is written."""
        if self._stop_asked_at is None:
            self._stop_asked_at = time.time()
            with contextlib.suppress(OSError):
                self.stop_file.touch()
        return self

    def poll(self, stop_event: threading.Event | None = None) -> bool:
        """One supervision step; True while Locust runs."""
        now = time.time()
        if (stop_event is not None and stop_event.is_set()) or now > self.limit:
            self.stop()
        if self._stop_asked_at is not None and now > self._stop_asked_at + STOP_GRACE_S:
            stop(self.proc, grace=5)
        return self.running

    def wait(
        self,
        progress: Progress | None = None,
        stop_event: threading.Event | None = None,
    ) -> RunResult:
        last = 0.0
        while self.poll(stop_event):
            now = time.time()
            if progress and now - last >= PROGRESS_EVERY_S:
                last = now
                recent = read_recent(self.out_dir, PROGRESS_EVERY_S * 2)
                progress(
                    progress_line(recent, PROGRESS_EVERY_S * 2, now - self.started, self.scenario)
                )
            time.sleep(0.2)
        return self.result()

    def result(self) -> RunResult:
        samples_path = self.out_dir / SAMPLES_FILE
        if not samples_path.exists():
            raise RunFailed(
                f"Locust exited with code {self.proc.returncode} without writing samples; "
                f"see {self.log_path}: {_last_line(self.log_path)}"
            )
        df = read_samples(samples_path)
        gen_path = self.out_dir / GENERATOR_FILE
        generator = json.loads(gen_path.read_text()) if gen_path.exists() else {}
        summary = summarize(_with_token_gaps(df, self.out_dir), self.scenario, generator)
        summary["target"] = self.target
        summary["out_dir"] = str(self.out_dir)
        write_summary(self.out_dir, summary)
        return RunResult(
            out_dir=self.out_dir,
            samples_path=samples_path,
            samples=df,
            summary=summary,
            started=float(generator.get("started") or self.started),
            ended=float(generator.get("ended") or time.time()),
            locust_csv_prefix=self.out_dir / "locust",
            locust_html=self.out_dir / "locust.html",
            exit_code=self.proc.returncode,
            extra={"generator": generator},
        )

    def kill(self) -> None:
        stop(self.proc, grace=5)

    def interrupted(self, by: str) -> RunResult:
        """After a Ctrl-C that reached the caller (KeyboardInterrupt): stop in order, every row
        written, the summary marked interrupted."""
        return mark_interrupted(self.stop().wait(), by)


def mark_interrupted(result: RunResult, by: str) -> RunResult:
    """The run was stopped by `by` (e.g. SIGINT) before its end: traffic_summary.json says so
    (`interrupted`, `interrupted_by`; the report's badge reads it)."""
    result.summary.update(interrupted=True, interrupted_by=by)
    write_summary(result.out_dir, result.summary)
    return result


def write_summary(out_dir: Path, summary: dict) -> Path:
    """traffic_summary.json, written whole or not at all (a temporary name, then renamed)."""
    path = out_dir / SUMMARY_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(summary, indent=2))
    os.replace(tmp, path)
    return path


def _with_token_gaps(df: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """samples + the sidecar's per-call gap figures (same rows, same order), for the summary."""
    path = out_dir / TOKEN_GAPS_FILE
    if not path.exists():
        return df
    gaps = pq.read_table(path).to_pandas()
    if len(gaps) != len(df):
        return df
    return df.assign(itl_p50=gaps["itl_p50"].to_numpy(), itl_max=gaps["itl_max"].to_numpy())


def _clear_previous(out_dir: Path) -> None:
    """A reused run directory must not hand back an earlier run's stop request or rows."""
    for name in (".stop", SAMPLES_FILE, GENERATOR_FILE, TOKEN_GAPS_FILE, LOAD_STARTED_FILE):
        (out_dir / name).unlink(missing_ok=True)
    live = out_dir / LIVE_DIR
    if live.is_dir():
        for chunk in live.glob("chunk-*.parquet"):
            chunk.unlink(missing_ok=True)


def _environ() -> dict[str, str]:
    return dict(os.environ)


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "(no log)"
    return lines[-1][:200] if lines else "(empty log)"


def start_scenario(
    scenario: Scenario,
    target: str,
    out_dir: str | Path,
    processes: int = 1,
    check: bool = True,
    remote: RemoteWorkers | None = None,
) -> RunHandle:
    """Start the load in the background and return at once. Call from a thread that outlives
    the run (the Locust process dies with the thread that spawned it). With `remote` Locust
    runs as a master and the load comes from workers started elsewhere."""
    if processes < 1:
        raise UserError(f"processes must be >= 1 (got {processes})")
    if remote is not None and (remote.count < 1 or processes > 1):
        raise UserError("remote workers: count >= 1, and no --processes on the master")
    if check:
        check_target(target, scenario)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return RunHandle(scenario, target, out, processes, remote)


def run_scenario(
    scenario: Scenario,
    target: str,
    out_dir: str | Path,
    processes: int = 1,
    progress: Progress | None = None,
    stop_event: threading.Event | None = None,
    remote: RemoteWorkers | None = None,
    check: bool = True,
) -> RunResult:
    """Run the whole scenario and return its RunResult. `stop_event`, SIGTERM or SIGINT (in the
    main thread) end it early and in order: in-flight calls become CANCELLED rows, the file is
    still written; after a signal the summary says `interrupted` (and `interrupted_by`)."""
    handle = start_scenario(scenario, target, out_dir, processes, check=check, remote=remote)
    if progress:
        where = f"{processes} process(es)"
        if remote:
            where = (
                f"master on {remote.bind_host}:{remote.bind_port} waiting up to "
                f"{remote.max_wait_s:.0f}s for {remote.count} worker(s) (loadgate worker)"
            )
        progress(
            f"loadgate: {scenario.name} ({scenario.arrival}, {len(scenario.phases)} phases, "
            f"{scenario.duration_s:.0f}s) -> {target}, {where}, out {handle.out_dir}"
        )
    event = stop_event or threading.Event()
    with stop_on_signals(event, progress) as signals:
        try:
            result = handle.wait(progress, event)
        finally:
            if handle.running:  # an exception in the wait loop: never leave Locust behind
                handle.stop()
                handle.kill()
    return mark_interrupted(result, signals.caught) if signals.caught else result


@dataclass
class Signals:
    caught: str = ""  # the first SIGINT/SIGTERM received ("SIGINT"), "" while none came


@contextlib.contextmanager
def stop_on_signals(event: threading.Event, progress: Progress | None) -> Iterator[Signals]:
    """Within the block (main thread only) SIGINT and SIGTERM set `event` instead of raising;
    the yielded Signals says which came first."""
    signals = Signals()
    if threading.current_thread() is not threading.main_thread():
        yield signals
        return

    def handler(signum, _frame):
        if not signals.caught:
            signals.caught = signal.Signals(signum).name
            if progress:
                progress(f"loadgate: {signals.caught}: stopping, writing samples...")
        event.set()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield signals
    finally:
        for s, h in old.items():
            signal.signal(s, h)
