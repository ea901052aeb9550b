"""The `loadgate` command. Subcommands live beside the code they drive and load lazily, so
`loadgate --help` is fast and one area's import cost never taxes another's command.

Exit codes: one table for every command, `loadgate.exits` (shown in each `--help`).
"""

from __future__ import annotations

import importlib
import sys

import click

from loadgate import __version__
from loadgate.errors import GateFailed, MeasurementInvalid, UserError, one_line
from loadgate.exits import ExitCode, help_epilog

# name -> (module, attribute, one-line help). A module that does not exist yet is reported as
# "not available" instead of breaking the whole command.
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "gate": ("loadgate.gate.cli", "gate", "Run every gate in loadtests/ and write a report."),
    "twin": ("loadgate.twin.cli", "twin", "Boot, inspect and stop the local twin stack."),
    "run": ("loadgate.traffic.cli", "run", "Drive a scenario's traffic and record samples."),
    "worker": ("loadgate.traffic.cli", "worker", "Send a scenario's load for a remote master."),
    "gameday": ("loadgate.chaos.cli", "gameday", "Run a Chaos Toolkit experiment under load."),
    "report": ("loadgate.report.cli", "report", "Render a run's report.html again."),
    "capacity": (
        "loadgate.regression.cli",
        "capacity",
        "Find the highest load at which every class meets its SLOs.",
    ),
    "compare": (
        "loadgate.regression.cli",
        "compare",
        "Compare runs against a baseline, figure by figure, beyond noise.",
    ),
    "baseline": ("loadgate.regression.cli", "baseline", "Save runs as a named baseline."),
    "lint": ("loadgate.lint.cli", "lint", "Check Kubernetes manifests against the architecture."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = SUBCOMMANDS.get(cmd_name)
        if entry is None:
            return None
        module, attr, help_text = entry
        try:
            cmd = getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as e:
            if e.name and (e.name == module or module.startswith(e.name + ".")):
                return _unavailable(cmd_name, help_text)
            raise
        _with_exit_codes(cmd, cmd_name)
        return cmd


def _with_exit_codes(cmd: click.Command, name: str) -> None:
    """Every command's --help ends with the exit-code table (a group's subcommands too)."""
    if cmd.epilog is None:
        cmd.epilog = help_epilog(name)
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            _with_exit_codes(sub, name)


def _unavailable(name: str, help_text: str) -> click.Command:
    @click.command(
        name=name,
        help=f"{help_text} (not available in this build)",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )
    def cmd() -> None:
        raise UserError(f"'loadgate {name}' is not available in this build yet")

    return cmd


@click.group(
    cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=help_epilog()
)
@click.version_option(__version__, prog_name="loadgate")
def cli() -> None:
    """loadgate: verify that an inference stack balances, fails fast, drops overloaded pods and
    scales as designed."""


def fail(message: str) -> None:
    click.echo(f"loadgate: error: {one_line(message)}", err=True)
    sys.exit(ExitCode.BAD_INPUT)


def main(argv: list[str] | None = None) -> None:
    try:
        rv = cli.main(args=argv, prog_name="loadgate", standalone_mode=False)
    except UserError as e:
        fail(str(e))
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("loadgate: interrupted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    except click.ClickException as e:
        fail(e.format_message())
    except GateFailed as e:
        click.echo(f"loadgate: {e}", err=True)
        sys.exit(ExitCode.FAILED)
    except MeasurementInvalid as e:
        click.echo(f"loadgate: {e}", err=True)
        sys.exit(ExitCode.INVALID)
    except KeyboardInterrupt:
        click.echo("loadgate: interrupted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    sys.exit(rv if isinstance(rv, int) else ExitCode.OK)


if __name__ == "__main__":
    main()
