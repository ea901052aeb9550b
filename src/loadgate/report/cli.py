"""`loadgate report RUN_DIR` re-renders report.html from a run directory;
`loadgate report compare RUN_A RUN_B` prints two runs' figures side by side."""

from __future__ import annotations

from pathlib import Path

import click

from loadgate.errors import UserError


class _RenderByDefault(click.Group):
    """`loadgate report RUN_DIR` means `loadgate report render RUN_DIR`."""

    def resolve_command(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["render", *args]
        return super().resolve_command(ctx, args)


@click.group(cls=_RenderByDefault)
def report() -> None:
    """Render a run's report.html (loadgate report RUN_DIR) or compare two runs
    (loadgate report compare RUN_A RUN_B)."""


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
    from loadgate.report.summary import read_summary

    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: not a run directory")
    summary = read_summary(run_dir)
    samples = _read_frame(run_dir / "samples.parquet", schema.read_samples, schema.empty_samples)
    timeline = _read_frame(
        run_dir / "timeline.parquet", schema.read_timeline, schema.empty_timeline
    )
    click.echo(f"rendering {run_dir} ({len(samples)} samples, {len(timeline)} timeline rows)...")
    out = write_report(run_dir, summary, samples, timeline)
    click.echo(str(out))


@report.command("compare")
@click.argument("run_a", type=click.Path(path_type=Path))
@click.argument("run_b", type=click.Path(path_type=Path))
def compare_cmd(run_a: Path, run_b: Path) -> None:
    """Print each gate's figure in RUN_A and RUN_B (run directories or summary.json files)."""
    from loadgate.report.compare import compare, format_table
    from loadgate.report.summary import read_summary

    a, b = read_summary(run_a), read_summary(run_b)
    click.echo(format_table(a, b, compare(a, b)))
