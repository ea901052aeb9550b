"""`loadgate run SCENARIO.yaml [--target HOST:PORT] [--processes N] [--out DIR]`."""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from pathlib import Path

import click

from loadgate.errors import UserError
from loadgate.traffic.runner import RunFailed, run_scenario
from loadgate.traffic.scenario import load_scenario

TWIN_MANIFESTS = Path("fixtures/k8s")


def new_run_id() -> str:
    """UTC timestamp + short random suffix: sortable and unique across parallel runs."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def _echo(line: str) -> None:
    click.echo(line, err=True)


@contextlib.contextmanager
def _target(target: str | None, out_dir: Path, time_scale: float | None):
    """The given target, or a twin booted for this run (and stopped after it)."""
    if target:
        yield target, "target"
        return
    try:
        from loadgate.twin.manifests import apply_overrides, load_twin_spec
        from loadgate.twin.stack import Twin
    except ImportError:
        raise UserError(
            "no --target given and the local twin is not available in this build"
        ) from None
    if not TWIN_MANIFESTS.is_dir():
        raise UserError(f"no --target given and {TWIN_MANIFESTS}/ (the twin's manifests) not found")
    spec = apply_overrides(load_twin_spec(TWIN_MANIFESTS), time_scale=time_scale)
    _echo(f"loadgate: no --target: starting the local twin (time scale {spec.time_scale})")
    with Twin.up(spec, run_dir=out_dir / "twin", progress=_echo) as twin:
        yield twin.grpc_target, "twin"


@click.command(name="run")
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--target", metavar="HOST:PORT", help="gRPC endpoint (default: boot the local twin)")
@click.option(
    "--processes",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Locust worker processes (open-loop rate is shared among them)",
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
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON on stdout")
def run(
    scenario: Path,
    target: str | None,
    processes: int,
    out: Path | None,
    twin_time_scale: float,
    as_json: bool,
) -> None:
    """Drive SCENARIO's traffic at a gRPC KServe v2 target and record one row per request.

    Writes samples.parquet, traffic_summary.json and Locust's CSV/HTML into the run directory.
    Ctrl-C stops early; in-flight calls are recorded as CANCELLED.
    """
    sc = load_scenario(scenario)
    out_dir = out or Path("reports") / new_run_id()
    with _target(target, out_dir, twin_time_scale) as (addr, kind):
        try:
            result = run_scenario(sc, addr, out_dir, processes=processes, progress=_echo)
        except RunFailed as e:
            raise UserError(str(e)) from None
    result.summary["stack"] = kind
    if as_json:
        click.echo(json.dumps(result.summary, indent=2))
    else:
        click.echo(result.table)
        click.echo(f"samples: {result.samples_path} ({len(result.samples)} rows)")
        click.echo(f"locust:  {result.locust_html}")
