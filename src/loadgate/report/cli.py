"""`loadgate report RUN_DIR` re-renders report.html from a run directory. (Comparing runs is
`loadgate compare`, loadgate.regression.)"""

from __future__ import annotations

from pathlib import Path

import click

from loadgate.completion import incomplete
from loadgate.errors import UserError


class _RenderByDefault(click.Group):
    """`loadgate report RUN_DIR` means `loadgate report render RUN_DIR`."""

    def resolve_command(self, ctx, args):
        if args and args[0] == "compare":
            raise UserError(
                "`loadgate report compare` is now `loadgate compare BASELINE CANDIDATE` "
                "(docs/regression.md)"
            )
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["render", *args]
        return super().resolve_command(ctx, args)


@click.group(cls=_RenderByDefault)
def report() -> None:
    """Render a run's report.html again (loadgate report RUN_DIR). To compare runs, use
    `loadgate compare BASELINE CANDIDATE`."""


def _read_frame(path: Path, reader, empty):
    if not path.exists():
        return empty()
    try:
        return reader(path)
    except Exception as e:  # a truncated or foreign Parquet file is the user's input
        raise UserError(f"{path}: cannot read as loadgate data: {e}") from None


@report.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
def render(run_dir: Path) -> None:
    """Re-render RUN_DIR/report.html from summary.json, samples.parquet and timeline.parquet."""
    from loadgate import schema
    from loadgate.report.html import write_report
    from loadgate.report.summary import SUMMARY_FILE, read_summary
    from loadgate.traffic.summary import SUMMARY_FILE as TRAFFIC_FILE

    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: not a run directory")
    killed = incomplete(run_dir)
    if not killed and not (run_dir / SUMMARY_FILE).exists() and (run_dir / TRAFFIC_FILE).exists():
        raise UserError(
            f"{run_dir}: a `loadgate run` directory has no {SUMMARY_FILE}: `loadgate report` "
            "renders gate and gameday runs (traffic_summary.json holds this run's figures)"
        )
    if killed and not (run_dir / SUMMARY_FILE).exists():
        raise UserError(f"{killed}: it wrote no {SUMMARY_FILE}, so there is nothing to render")
    if killed:  # rendered anyway: what was written is worth seeing, under an INTERRUPTED badge
        click.echo(f"loadgate: warning: {killed}: the report shows only what was written", err=True)
    summary = read_summary(run_dir)
    samples = _read_frame(run_dir / "samples.parquet", schema.read_samples, schema.empty_samples)
    timeline = _read_frame(
        run_dir / "timeline.parquet", schema.read_timeline, schema.empty_timeline
    )
    click.echo(f"rendering {run_dir} ({len(samples)} samples, {len(timeline)} timeline rows)...")
    out = write_report(run_dir, summary, samples, timeline)
    click.echo(str(out))
