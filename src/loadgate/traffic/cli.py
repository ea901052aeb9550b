"""`loadgate run SCENARIO.yaml [--target HOST:PORT] [--processes N] [--out DIR]`."""

from __future__ import annotations

import json
import secrets
import signal
import sys
import time
from pathlib import Path

import click

from loadgate import hostport
from loadgate.completion import writing
from loadgate.errors import UserError
from loadgate.exits import STATUS_EXIT
from loadgate.flags import POSITIVE
from loadgate.output import output_option, renamed_option
from loadgate.procs import spawn, stop, wait_exit
from loadgate.traffic import kserve
from loadgate.traffic.processes import AUTO, Choice, resolve
from loadgate.traffic.runner import (
    RemoteWorkers,
    RunFailed,
    check_target,
    driver_env,
    run_scenario,
    worker_command,
    write_summary,
)
from loadgate.traffic.scenario import load_scenario
from loadgate.traffic.stacks import (
    open_stack,
    twin_overrides,
    write_proxy_records,
    write_stack_info,
)
from loadgate.traffic.verdict import run_verdict


def new_run_id() -> str:
    """UTC timestamp + short random suffix: sortable and unique across parallel runs."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def _echo(line: str) -> None:
    click.echo(line, err=True)


def twin_override_option():
    return click.option(
        "--twin-override",
        multiple=True,
        metavar="KEY=VALUE",
        help="override a twin setting booted without --target (the `loadgate twin up` flag "
        "names: lb, replicas, max_requests, no_autoscaler, ready_max_queue, token_chunk, "
        "decode_slowdown, ...); repeatable",
    )


def processes_option(help_text: str):
    return click.option(
        "--processes", type=click.IntRange(1, 64), default=1, show_default=True, help=help_text
    )


def _processes(value: str) -> str | int:
    if value == AUTO:
        return value
    if not value.isdigit() or not 1 <= int(value) <= 64:
        raise click.BadParameter(f"{value!r}: expected auto or a number from 1 to 64")
    return int(value)


@click.command(name="run")
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--target", metavar="HOST:PORT", help="gRPC endpoint (default: boot the local twin)")
@click.option(
    "--processes",
    default=AUTO,
    show_default=True,
    metavar="auto|N",
    callback=lambda _ctx, _param, v: _processes(v),
    help="Locust worker processes sharing the open-loop rate; auto: one per core the stack "
    "leaves free (all cores for a remote target, 1 beside a local twin)",
)
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    help="run directory (default reports/<run-id>/)",
)
@click.option(
    "--twin-time-scale",
    type=POSITIVE,
    default=None,
    help="simulated-time factor of the twin booted without --target (default 0.2, as every "
    "command that boots a twin; 1 = real model timings)",
)
@click.option(
    "--expect-workers",
    type=click.IntRange(1, 1024),
    help="run as Locust master: wait for N `loadgate worker` processes (other machines)",
)
@click.option(
    "--master-bind",
    default="0.0.0.0:5557",
    show_default=True,
    metavar="HOST:PORT",
    help="where the master listens for workers (with --expect-workers)",
)
@twin_override_option()
@click.option(
    "--fail-on-error-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="exit 1 when the share of failed calls (rejections included, the calls cancelled at "
    "the stop not) is above this; 0: any failure",
)
@output_option("The summary as a table, or as JSON (what traffic_summary.json holds).")
@renamed_option("--json")
def run(
    scenario: Path,
    target: str | None,
    processes: int,
    out: Path | None,
    twin_time_scale: float | None,
    expect_workers: int | None,
    master_bind: str,
    twin_override: tuple[str, ...],
    fail_on_error_rate: float,
    output: str,
) -> None:
    """Drive SCENARIO's traffic at a gRPC KServe v2 target and record one row per request.

    Writes samples.parquet, traffic_summary.json and Locust's CSV/HTML into the run directory,
    which holds INCOMPLETE until every file is written. Ctrl-C or SIGTERM stops early: in-flight
    calls are recorded as CANCELLED, every file is written and the run is INTERRUPTED (exit
    130). With --expect-workers the load comes from `loadgate worker SCENARIO --master
    THIS_HOST` processes; their rows are shipped here and written into this run directory.
    """
    sc = load_scenario(scenario)
    kserve.check_client(sc.client, str(scenario))
    remote = None
    if target is not None:
        hostport.parse(target, "--target")
    if expect_workers:
        if processes not in (AUTO, 1):
            raise UserError("--processes and --expect-workers exclude each other")
        host, port = hostport.parse(master_bind, "--master-bind", default_port=5557)
        remote = RemoteWorkers(expect_workers, host, port)
    overrides = twin_overrides(twin_override, twin_time_scale)
    if target is not None:  # unreachable, or a profile that does not fit: before any file
        check_target(target, sc)
    out_dir = out or Path("reports") / new_run_id()
    with writing(out_dir, "loadgate run"):
        with open_stack(target, out_dir, overrides, _echo) as stack:
            write_stack_info(out_dir, stack.info)
            if remote:
                chosen = Choice(1, f"{remote.count} worker(s) started elsewhere (--expect-workers)")
            else:  # the start line names the count; the summary keeps why
                pods = stack.twin.spec.replicas if stack.twin is not None else None
                chosen = resolve(processes, stack.target, pods)
            try:
                result = run_scenario(
                    sc,
                    stack.target,
                    out_dir,
                    processes=chosen.processes,
                    progress=_echo,
                    remote=remote,
                    check=target is None,
                )
            except RunFailed as e:
                raise UserError(str(e)) from None
        result.summary["stack"] = stack.info.kind
        result.summary["generator"]["processes_chosen"] = chosen.why
        if stack.twin is not None:  # read once the twin is down: Envoy flushes its log then
            result.summary["proxy"] = write_proxy_records(
                stack.twin.access_log, out_dir, result.samples
            )
        interrupted = str(result.summary.get("interrupted_by") or "")
        verdict = run_verdict(result.samples, result.summary, fail_on_error_rate, interrupted)
        result.summary = verdict.record(result.summary, fail_on_error_rate)
        write_summary(out_dir, result.summary)
    if output == "json":
        click.echo(json.dumps(result.summary, indent=2))
    else:
        click.echo(result.table)
        click.echo(f"samples: {result.samples_path} ({len(result.samples)} rows)")
        click.echo(f"locust:  {result.locust_html}")
    if output == "json" and verdict.status != "PASS":  # the table's last line says it
        _echo(f"loadgate: run {verdict.status}: {verdict.reason}")
    sys.exit(STATUS_EXIT[verdict.status])


@click.command(name="worker")
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--master",
    required=True,
    metavar="HOST[:PORT]",
    help="the machine running `loadgate run --expect-workers N` (port default 5557)",
)
@processes_option("Locust worker processes on this machine (each counts as one of the master's N)")
def worker(scenario: Path, master: str, processes: int) -> None:
    """Send SCENARIO's load for a master on another machine; rows go to the master.

    SCENARIO must be the same file the master runs (a worker with another one sends nothing and
    the master's summary names it). Ctrl-C or SIGTERM stop this worker in order: its in-flight
    calls end CANCELLED and its remaining rows still reach the master.
    """
    sc = load_scenario(scenario)  # one clear line for a bad file, before Locust starts
    kserve.check_client(sc.client, str(scenario))
    host, port = hostport.parse(master, "--master", default_port=5557)
    cmd = worker_command(host, port, processes)
    _echo(f"loadgate: worker for {host}:{port} ({processes} process(es)), scenario {scenario}")
    proc = spawn(cmd, "-", env=driver_env(scenario.resolve()))
    forward = lambda signum, _frame: proc.send_signal(signal.SIGTERM)  # noqa: E731
    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = wait_exit(proc)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        stop(proc, grace=15)
    if code not in (0, -signal.SIGTERM):
        raise UserError(f"the Locust worker exited with code {code} (see its output above)")
