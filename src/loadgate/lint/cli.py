"""`loadgate lint [DIR] [-o table|json]`: exit 0 clean, 1 on errors, 2 on bad input."""

from __future__ import annotations

import sys

import click

from loadgate.exits import ExitCode
from loadgate.lint.check import lint as run_lint
from loadgate.lint.check import rule_descriptions
from loadgate.lint.findings import render_json, render_text
from loadgate.lint.schemas import DEFAULT_KUBE_VERSION
from loadgate.output import output_option


@click.command(name="lint")
@click.argument("directory", default="fixtures/k8s", required=False)
@output_option("Findings as a table (text) or JSON.")
@click.option(
    "--kube-version",
    default=DEFAULT_KUBE_VERSION,
    show_default=True,
    help="Kubernetes version whose schemas the core kinds are checked against.",
)
@click.option("--list-rules", is_flag=True, help="Print the rules and exit.")
def lint(directory: str, output: str, kube_version: str, list_rules: bool) -> None:
    """Check Kubernetes manifests against their schemas and the architecture's rules.

    DIRECTORY defaults to fixtures/k8s. Each finding names the file, the key path and a fix.
    """
    rules = rule_descriptions()
    if list_rules:
        for rule_id, desc in rules.items():
            click.echo(f"{rule_id:26} {desc}")
        return
    result = run_lint(directory, kube_version)
    if output == "json":
        click.echo(
            render_json(result.findings, result.files, result.objects, list(rules), directory)
        )
    else:
        click.echo(render_text(result.findings, result.files, result.objects))
    if result.errors:
        sys.exit(ExitCode.FAILED)
