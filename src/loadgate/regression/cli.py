"""`loadgate capacity SCENARIO`, `loadgate compare BASELINE CANDIDATE`, `loadgate baseline`.

Exit codes (loadgate.exits): capacity 0 when the search found a capacity, 1 when no load met the
SLOs, 3 when it could not finish (a probe stayed INVALID), 130 when interrupted; compare 0, or 1
when a gating figure regressed significantly beyond its floor; 2 for any bad input (sides that
are not comparable included).
"""

from __future__ import annotations

import json
import secrets
import sys
import threading
import time
from pathlib import Path

import click

from loadgate import hostport
from loadgate.config import validate
from loadgate.errors import UserError
from loadgate.exits import ExitCode
from loadgate.flags import POSITIVE
from loadgate.output import output_option, renamed_option
from loadgate.regression import BASELINES_DIR
from loadgate.traffic.cli import new_run_id, twin_override_option
from loadgate.traffic.scenario import CapacitySearch, load_scenario


def baselines_option(*decls: str):
    """Where named baselines live."""
    return click.option(
        *decls,
        type=click.Path(file_okay=False, path_type=Path),
        default=BASELINES_DIR,
        show_default=True,
        help="the directory of named baselines",
    )


def _echo(line: str) -> None:
    click.echo(line, err=True)


def _search_settings(sc, path: Path, flags: dict) -> CapacitySearch:
    base = (sc.capacity or CapacitySearch()).model_dump()
    given = {k: v for k, v in flags.items() if v is not None}
    return validate(CapacitySearch, {**base, **given}, f"{path} capacity + flags")


@click.command(name="capacity")
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--target", metavar="HOST:PORT", help="gRPC endpoint (default: boot the local twin)")
@click.option(
    "--kubernetes-config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="loadgate.yaml whose `kubernetes:` block names the cluster (pods are watched between "
    "probes; its grpc_target is the target unless --target is given)",
)
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), help="default reports/capacity-<id>/"
)
@click.option(
    "--twin-time-scale",
    type=POSITIVE,
    default=None,
    help="simulated-time factor of a booted twin (default 0.2, as every command that boots one)",
)
@twin_override_option()
@click.option(
    "--autoscaler/--no-autoscaler",
    default=False,
    show_default=True,
    help="twin: keep the KEDA/HPA emulation (default off: capacity at the manifests' replicas)",
)
@click.option("--start", type=float, help="first load probed (scenario capacity.start)")
@click.option("--max", "max_", type=float, help="highest load probed (capacity.max)")
@click.option("--tolerance", type=float, help="stop when hi/lo <= 1 + this (capacity.tolerance)")
@click.option("--warmup-s", type=float, help="unjudged seconds per probe (capacity.warmup_s)")
@click.option("--measure-s", type=float, help="judged seconds per probe (capacity.measure_s)")
@click.option("--repeats", type=int, help="reruns of an undecided probe (capacity.repeats)")
@click.option(
    "--refine", type=int, help="probes near the fitted capacity after bisecting (capacity.refine)"
)
@output_option("The curve and the capacity as a table, or capacity.json as JSON.")
@renamed_option("--format", takes_value=True)
def capacity(
    scenario: Path,
    target: str | None,
    kubernetes_config: Path | None,
    out: Path | None,
    twin_time_scale: float | None,
    twin_override: tuple[str, ...],
    autoscaler: bool,
    start: float | None,
    max_: float | None,
    tolerance: float | None,
    warmup_s: float | None,
    measure_s: float | None,
    repeats: int | None,
    refine: int | None,
    output: str,
) -> None:
    """Find the highest load at which every class of SCENARIO meets its SLOs.

    Probes the scenario's classes at one load each (open-loop rate, or users when the scenario
    is closed-loop): doubling from the start, then bisecting, then `refine` probes near the
    capacity. The capacity and its 95 % interval come from a non-decreasing fit through every
    probe's share of calls over each SLO. Prints them and the curve; writes capacity.json,
    capacity.html and each probe's run directory.
    """
    from loadgate.completion import writing
    from loadgate.regression import capacity as search_mod
    from loadgate.regression.html import write_capacity
    from loadgate.regression.probe import Prober, unboundable
    from loadgate.regression.result import write_result
    from loadgate.regression.rundir import scenario_identity
    from loadgate.regression.text import capacity_table
    from loadgate.traffic import kserve
    from loadgate.traffic.runner import stop_on_signals
    from loadgate.traffic.stacks import (
        kubernetes_block,
        open_stack,
        twin_overrides,
        write_stack_info,
    )

    sc = load_scenario(scenario)
    kserve.check_client(sc.client, str(scenario))
    flags = dict(
        start=start,
        max=max_,
        tolerance=tolerance,
        warmup_s=warmup_s,
        measure_s=measure_s,
        repeats=repeats,
        refine=refine,
    )
    cfg = _search_settings(sc, scenario, flags)
    if not any(c.slo for c in sc.classes):
        raise UserError(f"{scenario}: no class has an slo: capacity is the load within them")
    overrides = twin_overrides(twin_override, twin_time_scale)
    if not autoscaler:
        overrides = overrides.model_copy(update={"no_autoscaler": True})
    if target is not None:
        hostport.parse(target, "--target")
    if kubernetes_config is not None:
        kubernetes_block(kubernetes_config)  # one line now, before the run directory
    out_dir = out or Path("reports") / f"capacity-{new_run_id()}"
    seed = sc.generator.seed if sc.generator.seed is not None else secrets.randbelow(2**31)
    began = time.time()
    abort = threading.Event()
    with writing(out_dir, "loadgate capacity"):
        with open_stack(target, out_dir, overrides, _echo, kubernetes_config) as stack:
            write_stack_info(out_dir, stack.info)
            prober = Prober(
                sc, cfg, stack.target, stack.info, stack.platform, out_dir, seed, _echo, abort
            )
            unit = "calls/s" if sc.open_loop else "users"
            _echo(
                f"loadgate: capacity of {sc.name} on {stack.info.description or stack.target}: "
                f"from {cfg.start:g} {unit}, probes {cfg.warmup_s:g} s warmup + "
                f"{cfg.measure_s:g} s measured, tolerance {cfg.tolerance:.0%}, seed {seed}"
            )
            for line in unboundable(sc, cfg.start, cfg):
                _echo(f"loadgate: warning: {line}")
            with stop_on_signals(abort, _echo):
                found = search_mod.search(prober.measure, cfg, integer=not sc.open_loop, say=_echo)
        result = search_mod.result(
            found,
            scenario=sc.name,
            identity=f"{scenario_identity(sc)} on {stack.info.identity()}",
            stack=stack.info,
            load_kind="rate" if sc.open_loop else "users",
            tolerance=cfg.tolerance,
            started=began,
        )
        (out_dir / "scenario.yaml").write_text(sc.to_yaml())
        path = write_result(out_dir, result)
        page = write_capacity(out_dir / "capacity.html", result)
    if output == "json":
        click.echo(result.model_dump_json(indent=2))
    else:
        click.echo(capacity_table(result))
        click.echo(f"result: {path}\npage:   {page}")
    if abort.is_set():
        sys.exit(ExitCode.INTERRUPTED)
    if not result.complete:
        sys.exit(ExitCode.INVALID)  # a probe stayed INVALID: what was found so far is written
    if result.capacity is None:
        sys.exit(ExitCode.FAILED)  # no load met the SLOs


def _paths(arg: str, root: Path) -> list[Path]:
    from loadgate.regression.baseline import resolve

    return [resolve(a.strip(), root) for a in arg.split(",") if a.strip()]


@click.command(name="compare")
@click.argument("baseline")
@click.argument("candidate")
@output_option("The verdicts as a table, or every row as JSON.")
@renamed_option("--format", takes_value=True)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="write the comparison page here",
)
@click.option(
    "--floor",
    type=click.FloatRange(0, 100),
    default=5.0,
    show_default=True,
    help="ignore changes below this many % (relative figures)",
)
@click.option(
    "--share-floor",
    type=click.FloatRange(0, 100),
    default=0.5,
    show_default=True,
    help="ignore changes of a share (error rate) below this many percentage points",
)
@click.option("--alpha", type=click.FloatRange(0.001, 0.2), default=0.05, show_default=True)
@click.option(
    "--gating",
    multiple=True,
    metavar="GLOB",
    help="figures that gate, as scope/figure globs (e.g. '*/ttft_p99_ms', 'capacity/*'); default: p99s, goodput, error rate, capacity",
)
@click.option(
    "--phase", multiple=True, help="judge only these phases of traffic runs (consecutive)"
)
@baselines_option("--baselines-dir")
def compare(
    baseline: str,
    candidate: str,
    output: str,
    html_path: Path | None,
    floor: float,
    share_floor: float,
    alpha: float,
    gating: tuple[str, ...],
    phase: tuple[str, ...],
    baselines_dir: Path,
) -> None:
    """Compare BASELINE with CANDIDATE, figure by figure, beyond noise.

    Each side: a run directory (loadgate run, gate or capacity), a directory of such runs, a
    baseline name (loadgate baseline save), or several of these joined by commas. Exits 1 when
    a gating figure regressed significantly beyond its floor.
    """
    from loadgate.regression.compare import Options, compare_runs
    from loadgate.regression.html import write_comparison
    from loadgate.regression.rundir import read_side
    from loadgate.regression.text import comparison_table

    base, warn_a = read_side(_paths(baseline, baselines_dir), phase)
    cand, warn_b = read_side(_paths(candidate, baselines_dir), phase)
    opts = Options(floor=floor / 100, share_floor=share_floor / 100, alpha=alpha, gating=gating)
    result = compare_runs(base, cand, opts).model_copy(update={"warnings": warn_a + warn_b})
    if output == "json":
        click.echo(result.model_dump_json(indent=2))
    else:
        click.echo(comparison_table(result))
    if html_path is not None:
        click.echo(f"page: {write_comparison(html_path, result, base, cand)}", err=True)
    if not result.comparable:
        raise UserError(
            f"not comparable: baseline {result.baseline_identity} vs candidate "
            f"{result.candidate_identity} ({result.reason})"
        )
    if result.regressed_gating:
        sys.exit(ExitCode.FAILED)


@click.group(name="baseline")
def baseline() -> None:
    """Save runs as a named baseline (a directory to commit or keep as a CI artifact)."""


@baseline.command(name="save")
@click.argument("name")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@baselines_option("--dir", "root")
@click.option("--force", is_flag=True, help="replace a baseline of that name")
def save(name: str, runs: tuple[Path, ...], root: Path, force: bool) -> None:
    """Copy RUNS (run directories, or directories of runs) into DIR/NAME."""
    from loadgate.regression.baseline import save as save_baseline

    dest = save_baseline(name, list(runs), root, force)
    n = len(list((dest / "runs").iterdir()))
    click.echo(f"baseline {name}: {n} run(s) in {dest}")


@baseline.command(name="list")
@baselines_option("--dir", "root")
@output_option("One line per baseline, or every baseline.json as a JSON list.")
def list_(root: Path, output: str) -> None:
    """The baselines in DIR."""
    from loadgate.regression.baseline import listing

    found = listing(root)
    if output == "json":
        click.echo(json.dumps([b.model_dump(mode="json") for b in found], indent=2))
        return
    for b in found:
        ids = sorted({r.identity for r in b.runs})
        click.echo(f"{b.name}  {len(b.runs)} run(s)  {b.created}  {' / '.join(ids)}")
