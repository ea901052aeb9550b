"""`loadgate gameday EXPERIMENT.yaml [--dry-run] [--out DIR]`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from loadgate.flags import POSITIVE


def _say(msg: str) -> None:
    click.echo(f"loadgate: {msg}", err=True)


@click.command()
@click.argument("experiment", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print what would be done; start nothing.")
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Run directory (default reports/chaos-<time>-<title>).",
)  # fmt: skip
@click.option(
    "--var", "variables", multiple=True, metavar="KEY=VALUE",
    help="Override a configuration key of the experiment (repeatable).",
)  # fmt: skip
@click.option(
    "--manifests", type=click.Path(file_okay=False, path_type=Path),
    default=Path("fixtures/k8s"), show_default=True,
    help="Manifests of the twin booted when none is running.",
)  # fmt: skip
@click.option(
    "--time-scale",
    type=POSITIVE,
    default=None,
    help="Time scale of a booted twin (default 0.2; > 0).",
)
def gameday(
    experiment: Path,
    dry_run: bool,
    out_dir: Path | None,
    variables: tuple[str, ...],
    manifests: Path,
    time_scale: float | None,
) -> None:
    """Run a Chaos Toolkit experiment under background load and write journal, samples,
    timeline and report.html (faults marked). Boots the twin when none is running. Exit 0 when
    the steady state held, 1 when it deviated or failed, 130 when interrupted."""
    from loadgate.chaos.gameday import plan, run_gameday
    from loadgate.errors import UserError

    overrides = {}
    for item in variables:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--var {item!r}: expected KEY=VALUE")
        overrides[key] = value
    if dry_run:
        lines = plan(experiment, overrides)  # a bad experiment or --var is one line, first
        click.echo("dry run: nothing will be started or changed")
        for line in lines:
            click.echo(line)
        refused = [ln.removeprefix("REFUSED: ") for ln in lines if ln.startswith("REFUSED: ")]
        if refused:  # the run itself would stop here
            raise UserError(f"the experiment would be refused: {refused[0]}")
        return
    result = run_gameday(experiment, out_dir, overrides, manifests, time_scale, _say)
    verdict = "deviated" if result.deviated else result.status
    click.echo(f"experiment {verdict}: journal {result.out_dir / 'journal.json'}")
    if result.report is not None:
        click.echo(f"report: {result.report}")
    sys.exit(result.exit_code)
