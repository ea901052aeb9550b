"""`loadgate gate`: run every gate in loadtests/ with pytest, print the verdict table and the
report's path; exit 0 only when every expected gate exists and passes.

    loadgate gate                                   # the twin from loadgate.yaml
    loadgate gate --twin-override lb=round_robin    # prove the balance gate catches round robin
    loadgate gate -- -k balance                     # extra pytest arguments after --
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from loadgate.errors import GateFailed, MeasurementInvalid, UserError
from loadgate.gate import catalogue


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
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
def gate(
    loadtests_dir: str,
    config_path: str,
    stack: str | None,
    report_dir: str | None,
    twin_override: tuple[str, ...],
    pytest_args: tuple[str, ...],
) -> None:
    """Run every gate in loadtests/ against the stack; exit 0 only when all gates exist and pass."""
    from loadgate.gate.config import load_gate_config, with_overrides, with_stack_kind
    from loadgate.gate.session import format_table, new_run_id
    from loadgate.report.summary import read_summary

    folder = Path(loadtests_dir)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder of gate tests")
    cfg, _ = load_gate_config(config_path)  # a config mistake is one line, before anything boots
    cfg = with_stack_kind(with_overrides(cfg, twin_override), stack, config_path)
    # The manifests (the deployment's facts, and the twin's config): one line now if they are
    # broken, not a pytest banner later.
    from loadgate.twin.manifests import load_twin_spec

    load_twin_spec(cfg.stack.manifests)
    if cfg.stack.kind == "kubernetes":
        # Wrong kube context, RBAC or an unreachable API: one line now, before any load.
        from loadgate.platform.kubernetes import KubernetesPlatform

        KubernetesPlatform.from_config(cfg.kubernetes or {}, source=config_path).replicas()
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
    rc = subprocess.call([*cmd, *pytest_args])
    if rc in (2, 4):  # interrupted or a usage error: pytest has printed the one-line reason
        raise UserError(f"the gate did not run to the end (pytest exit {rc}); see the line above")
    base = Path(report_dir) if report_dir else cfg.report_dir
    run_dir = (base if base.is_absolute() else Path(config_path).resolve().parent / base) / run_id
    click.echo("")
    summary = None
    if (run_dir / "summary.json").exists():
        summary = read_summary(run_dir)
        click.echo(format_table(summary.gates))
        if not summary.valid:
            click.echo(f"INVALID: {summary.invalid_reason}")
        click.echo(f"report: {run_dir / 'report.html'}")
    else:
        click.echo(f"no summary was written (pytest exit {rc}); see {run_dir}")
    for g in missing:
        click.echo(f"loadgate: gate not implemented yet: {g.test_file} ({g.proves})", err=True)
    if missing:
        raise GateFailed(f"gate FAILED: {len(missing)} gate(s) missing")
    report = run_dir / "report.html"
    if summary is None or rc not in (0, 1, 3) or summary.status == "FAIL":
        raise GateFailed(f"gate FAILED (pytest exit {rc}); report: {report}")
    if summary.status == "INVALID":
        raise MeasurementInvalid(
            f"gate INVALID: a measurement could not be trusted; report: {report}"
        )
    if rc != 0:
        raise GateFailed(f"gate FAILED (pytest exit {rc}); report: {report}")
    click.echo("gate PASSED")
