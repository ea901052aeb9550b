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
