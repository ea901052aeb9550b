"""`loadgate gate`: run every gate in loadtests/ with pytest and say plainly which are missing.

The gates are the product's main job. Until each exists this command reports it as missing and
fails, instead of passing on what was never checked.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from loadgate.errors import GateFailed

# The gates the architecture calls for: file in loadtests/ -> what it proves.
EXPECTED_GATES = {
    "test_least_request_balance.py": "least-request balance",
    "test_fail_fast.py": "fail-fast 503 / UNAVAILABLE under flood",
    "test_readiness_dropout.py": "readiness drop-out over queue 50",
    "test_keda_scale_up.py": "KEDA scale-up on in-flight requests",
    "test_pod_kill.py": "pod kill under load",
}


@click.command()
@click.option(
    "--loadtests",
    "loadtests_dir",
    default="loadtests",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder of gate tests.",
)
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
def gate(loadtests_dir: str, pytest_args: tuple[str, ...]) -> None:
    """Run every gate in loadtests/ against the stack; exit 0 only when all gates exist and pass."""
    folder = Path(loadtests_dir)
    present = [name for name in EXPECTED_GATES if (folder / name).exists()]
    missing = [name for name in EXPECTED_GATES if name not in present]
    for name in missing:
        click.echo(f"loadgate: gate not implemented yet: {name} ({EXPECTED_GATES[name]})", err=True)
    rc = 0
    if present:
        rc = subprocess.call([sys.executable, "-m", "pytest", str(folder), *pytest_args])
    else:
        click.echo("loadgate: no gate exists yet in loadtests/: nothing was verified", err=True)
    if rc != 0 or missing:
        raise GateFailed(f"gate FAILED: {len(missing)} gate(s) missing, pytest exit {rc}")
