"""`loadgate run SCENARIO.yaml [--target HOST:PORT] [--processes N] [--out DIR]`."""

from __future__ import annotations

import contextlib
import json
import secrets
import signal
import time
from pathlib import Path

import click

from loadgate.errors import UserError
from loadgate.procs import spawn, stop
from loadgate.traffic.processes import AUTO, Choice, resolve
from loadgate.traffic.runner import (
    RemoteWorkers,
    RunFailed,
    driver_env,
    run_scenario,
    worker_command,
)
from loadgate.traffic.scenario import load_scenario

TWIN_MANIFESTS = Path("fixtures/k8s")


def new_run_id() -> str:
    """UTC timestamp + short random suffix: sortable and unique across parallel runs."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def _echo(line: str) -> None:
    click.echo(line, err=True)


@contextlib.contextmanager
def _target(target: str | None, out_dir: Path, time_scale: float | None):
    """(gRPC target, stack kind, the booted twin or None): the given target, or a twin booted
    for this run (and stopped after it)."""
    if target:
        yield target, "target", None
        return
    from loadgate.twin.boot import boot_twin, twin_spec

    if not TWIN_MANIFESTS.is_dir():
        raise UserError(f"no --target given and {TWIN_MANIFESTS}/ (the twin's manifests) not found")
    spec = twin_spec(TWIN_MANIFESTS, time_scale=time_scale)
    _echo(f"loadgate: no --target: starting the local twin (time scale {spec.time_scale})")
    with boot_twin(spec, out_dir / "twin", progress=_echo) as twin:
        yield twin.grpc_target, "twin", twin


def _write_proxy_records(twin, out_dir: Path, samples) -> dict:
    """The twin's Envoy access log of this run as proxy.parquet, and how it joins the samples
    (each call's proxy record by request id)."""
    from loadgate.observe.envoy_access import AccessLogTail, join_proxy
    from loadgate.schema import write_proxy

    proxy = AccessLogTail(twin.access_log).read()
    write_proxy(proxy, out_dir / "proxy.parquet")
    joined = join_proxy(samples, proxy)
    return {
        "records": len(proxy),
        "joined": int(joined["proxy_start"].notna().sum()),
        "flags": {str(k): int(v) for k, v in proxy["flags"].value_counts().items() if k},
    }


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
    type=float,
    default=0.1,
    show_default=True,
    help="simulated-time factor of the twin booted without --target (1 = real model timings)",
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
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON on stdout")
def run(
    scenario: Path,
    target: str | None,
    processes: int,
    out: Path | None,
    twin_time_scale: float,
    expect_workers: int | None,
    master_bind: str,
    as_json: bool,
) -> None:
    """Drive SCENARIO's traffic at a gRPC KServe v2 target and record one row per request.

    Writes samples.parquet, traffic_summary.json and Locust's CSV/HTML into the run directory.
    Ctrl-C stops early; in-flight calls are recorded as CANCELLED. With --expect-workers the
    load comes from `loadgate worker SCENARIO --master THIS_HOST` processes; their rows are
    shipped here and written into this run directory.
    """
    sc = load_scenario(scenario)
    remote = None
    if expect_workers:
        if processes not in (AUTO, 1):
            raise UserError("--processes and --expect-workers exclude each other")
        host, port = _host_port(master_bind, "--master-bind", default_port=5557)
        remote = RemoteWorkers(expect_workers, host, port)
    out_dir = out or Path("reports") / new_run_id()
    with _target(target, out_dir, twin_time_scale) as (addr, kind, twin):
        if remote:
            chosen = Choice(1, f"{remote.count} worker(s) started elsewhere (--expect-workers)")
        else:
            # the start line names the count; the summary keeps why (generator.processes_chosen)
            chosen = resolve(processes, addr, twin.spec.replicas if twin is not None else None)
        try:
            result = run_scenario(
                sc, addr, out_dir, processes=chosen.processes, progress=_echo, remote=remote
            )
        except RunFailed as e:
            raise UserError(str(e)) from None
    if twin is not None:  # read once the twin is down: Envoy flushes its log on the way out
        result.summary["proxy"] = _write_proxy_records(twin, out_dir, result.samples)
    result.summary["stack"] = kind
    result.summary["generator"]["processes_chosen"] = chosen.why
    (out_dir / "traffic_summary.json").write_text(json.dumps(result.summary, indent=2))
    if as_json:
        click.echo(json.dumps(result.summary, indent=2))
    else:
        click.echo(result.table)
        click.echo(f"samples: {result.samples_path} ({len(result.samples)} rows)")
        click.echo(f"locust:  {result.locust_html}")


def _host_port(value: str, what: str, default_port: int) -> tuple[str, int]:
    host, _, port = value.rpartition(":") if ":" in value else (value, "", str(default_port))
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"{what} {value!r}: expected HOST:PORT")
    return host, int(port)


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
    load_scenario(scenario)  # one clear line for a bad file, before Locust starts
    host, port = _host_port(master, "--master", default_port=5557)
    cmd = worker_command(host, port, processes)
    _echo(f"loadgate: worker for {host}:{port} ({processes} process(es)), scenario {scenario}")
    proc = spawn(cmd, "-", env=driver_env(scenario.resolve()))
    forward = lambda signum, _frame: proc.send_signal(signal.SIGTERM)  # noqa: E731
    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = proc.wait()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        stop(proc, grace=15)
    if code not in (0, -signal.SIGTERM):
        raise UserError(f"the Locust worker exited with code {code} (see its output above)")
