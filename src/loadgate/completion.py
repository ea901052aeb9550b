"""A run directory that is still being written says so: it holds the file INCOMPLETE.

Every command that writes a run directory (`loadgate run`, `gate`, `capacity`, `gameday`)
creates INCOMPLETE first and removes it once every file is written. A run killed outright
(SIGKILL, OOM, power loss) leaves it behind, so its samples.parquet, which may look whole, is
never taken for a finished run: readers (`loadgate compare`, `baseline save`, `report`) check
`incomplete(path)`. A run directory inside another (a capacity probe, a gate's load) is
incomplete while the one above it is.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

MARKER = "INCOMPLETE"


def _read(marker: Path) -> dict | None:
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "command" in data else None


def begin(run_dir: Path, command: str) -> bool:
    """Create `run_dir` marked INCOMPLETE by `command`; False when this process had marked it
    already (a command over the runner's API: the outer writer removes the mark)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    marker = run_dir / MARKER
    mine = _read(marker)
    if mine is not None and mine.get("pid") == os.getpid():
        return False
    info = {
        "command": command,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.time(),
        "note": "this run is still being written, or was killed before it finished; "
        "its files hold only part of the run",
    }
    tmp = run_dir / f".{MARKER}.tmp"
    tmp.write_text(json.dumps(info, indent=1) + "\n")
    os.replace(tmp, marker)
    return True


def finish(run_dir: Path) -> None:
    """Every file of the run is written."""
    (run_dir / MARKER).unlink(missing_ok=True)


@contextlib.contextmanager
def writing(run_dir: Path, command: str) -> Iterator[Path]:
    """`run_dir` marked INCOMPLETE for the block; the mark goes when the block ends normally.
    An exception (an error, a Ctrl-C not handled in order) leaves it: the files are not whole."""
    owner = begin(run_dir, command)
    yield run_dir
    if owner:
        finish(run_dir)


def _alive(pid: int) -> bool:
    from loadgate.procs import pid_alive

    return pid_alive(pid)


def incomplete(path: Path) -> str:
    """Why the run directory `path` (or one it belongs to) is not complete; "" when it is."""
    path = Path(path).resolve()
    for d in (path, *path.parents):
        info = _read(d / MARKER)
        if info is None:
            continue
        what, pid = info.get("command", "loadgate"), info.get("pid")
        here = info.get("host") == socket.gethostname()
        if here and pid == os.getpid():
            continue  # this process is writing it (a report rendered before the end)
        if here and isinstance(pid, int) and _alive(pid):
            return f"{d}: still being written by {what} (pid {pid})"
        return f"{d}: incomplete: {what} (pid {pid}) stopped before it finished writing it"
    return ""
