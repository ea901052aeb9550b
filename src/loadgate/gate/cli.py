"""`loadgate gate`: run every gate in loadtests/ with pytest, print the verdict table and the
report's path; exit 0 only when every expected gate exists and passes.

    loadgate gate                                   # the twin from loadgate.yaml
    loadgate gate --twin-override lb=round_robin    # prove the balance gate catches round robin
    loadgate gate -- -k balance                     # extra pytest arguments after --
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from loadgate.errors import GateFailed, MeasurementInvalid, UserError
from loadgate.exits import ExitCode
from loadgate.gate import catalogue
from loadgate.gate.plugin import stopped_by
from loadgate.output import output_option
from loadgate.procs import spawn, stop, wait_exit


@click.command(context_settings={"ignore_unknown_options": True})
@click.option(
    "--loadtests",
    "loadtests_dir",
    default="loadtests",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder of gate tests.",
)
@click.option(
    "--config",
    "config_path",
    default="loadgate.yaml",
    show_default=True,
    help="The gate's configuration.",
)
@click.option(
    "--stack",
    type=click.Choice(["twin", "kubernetes"]),
    default=None,
    help="Override loadgate.yaml's stack.kind.",
)
@click.option("--report-dir", default=None, help="Folder of run directories (default: reports).")
@click.option(
    "--twin-override",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a twin setting, e.g. lb=round_robin, max_requests=0 (repeatable).",
)
@output_option("The verdicts as a table, or summary.json as JSON (pytest's output to stderr).")
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
def gate(
    loadtests_dir: str,
    config_path: str,
    stack: str | None,
    report_dir: str | None,
    twin_override: tuple[str, ...],
    output: str,
    pytest_args: tuple[str, ...],
) -> None:
    """Run every gate in loadtests/ against the stack; exit 0 only when all gates exist and pass."""
    from loadgate.gate.config import prepare
    from loadgate.gate.session import format_table, new_run_id
    from loadgate.report.summary import read_summary

    # config, overrides and manifests: one line now if broken, not a pytest banner later
    cfg, scenarios = prepare(config_path, twin_override, stack)
    folder = Path(loadtests_dir)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder of gate tests")
    if cfg.stack.kind == "kubernetes":
        # Wrong kube context, RBAC or an unreachable API: one line now, before any load.
        from loadgate.platform.kubernetes import KubernetesPlatform

        KubernetesPlatform.from_config(cfg.kubernetes or {}, source=config_path).replicas()
    given = cfg.target or (
        (cfg.kubernetes or {}).get("grpc_target") if cfg.stack.kind == "kubernetes" else None
    )
    if given:  # a named stack that does not answer gRPC: one line now, not mid-session
        from loadgate.traffic.runner import check_target

        check_target(given, next(iter(scenarios.values())))
    missing = [g for g in catalogue.GATES if not (folder / g.test_file).exists()]
    run_id = new_run_id()
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(folder),
        "-p",
        "no:cacheprovider",
        "-rN",
        "--config",
        config_path,
        "--run-id",
        run_id,
    ]
    if stack:
        cmd += ["--stack", stack]
    if report_dir:
        cmd += ["--report-dir", report_dir]
    for item in twin_override:
        cmd += ["--twin-override", item]
    rc, interrupted = _run_pytest([*cmd, *pytest_args], quiet=output == "json")
    if rc == 4:  # pytest refused its arguments: it has printed the one-line reason
        raise UserError(f"pytest refused the arguments after -- (pytest exit {rc}); see above")
    base = Path(report_dir) if report_dir else cfg.report_dir
    run_dir = (base if base.is_absolute() else Path(config_path).resolve().parent / base) / run_id
    if rc == 2 and not interrupted:  # the session stopped on a user error (the stack's reach)
        raise UserError(stopped_by(run_dir) or f"the gate stopped (pytest exit {rc}); see above")
    report = run_dir / "report.html"
    summary = read_summary(run_dir) if (run_dir / "summary.json").exists() else None
    if output == "json":
        click.echo(summary.model_dump_json(indent=2) if summary else "null")
    elif summary is not None:
        click.echo("")
        click.echo(format_table(summary.gates))
        if not summary.valid:
            click.echo(f"INVALID: {summary.invalid_reason}")
        click.echo(f"report: {report}")
    else:
        click.echo(f"\nno summary was written (pytest exit {rc}); see {run_dir}")
    if interrupted:  # every gate that ran is written, and the report says INTERRUPTED
        click.echo(f"loadgate: gate INTERRUPTED; report: {report}", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    for g in missing:
        click.echo(f"loadgate: gate not implemented yet: {g.test_file} ({g.proves})", err=True)
    if missing:
        raise GateFailed(f"gate FAILED: {len(missing)} gate(s) missing")
    if summary is None or rc not in (0, 1, 3) or summary.status == "FAIL":
        raise GateFailed(f"gate FAILED (pytest exit {rc}); report: {report}")
    if summary.status == "INVALID":
        raise MeasurementInvalid(
            f"gate INVALID: a measurement could not be trusted; report: {report}"
        )
    if rc != 0:
        raise GateFailed(f"gate FAILED (pytest exit {rc}); report: {report}")
    click.echo("gate PASSED", err=output == "json")


def _run_pytest(cmd: list[str], quiet: bool) -> tuple[int, bool]:
    """(pytest's exit code, interrupted). pytest runs in its own process group (and dies with
    this one): a Ctrl-C or SIGTERM here is passed on once as SIGINT, so pytest stops the gate in
    order and writes what ran."""
    proc = spawn(cmd, "-err" if quiet else "-")
    forwarded: list[bool] = []

    def forward(_signum, _frame) -> None:
        if not forwarded:
            forwarded.append(True)
            proc.send_signal(signal.SIGINT)

    old = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return wait_exit(proc), bool(forwarded)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        stop(proc, grace=60)
