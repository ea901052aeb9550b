"""One output convention for every command that prints results: `-o/--output table|json`."""

from __future__ import annotations

import click

OUTPUTS = ("table", "json")


def output_option(help_text: str = "How to print the result."):
    return click.option(
        "-o",
        "--output",
        "output",
        type=click.Choice(OUTPUTS),
        default="table",
        show_default=True,
        help=help_text,
    )


def renamed_option(old: str, takes_value: bool = False):
    """A hidden former flag (`--json`, `--format json`) that says what replaced it."""

    def refuse(ctx: click.Context, param: click.Parameter, value) -> None:
        if value:
            raise click.UsageError(f"{old} is now -o/--output ({', '.join(OUTPUTS)})", ctx)

    return click.option(
        old, hidden=True, is_flag=not takes_value, expose_value=False, callback=refuse
    )
