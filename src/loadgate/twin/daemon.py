"""Running a twin until told to stop: in the foreground (`loadgate twin up`) or as a detached
daemon (`loadgate twin up --detach` runs `python -m loadgate.twin.daemon`).

Either way the twin's endpoints and the owner's pid go to `<state_dir>/state.json`, which is how
`loadgate twin status/down` and `TwinPlatform.from_state()` find it. SIGTERM or SIGINT stops the
twin cleanly; the state file is removed on the way out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loadgate.errors import UserError
from loadgate.platform.twin import read_state
from loadgate.procs import pid_alive
from loadgate.twin.spec import TwinSpec


def write_state(state_dir: Path, state: dict[str, Any]) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = state_dir / "state.json.tmp"
    tmp.write_text(json.dumps(state, indent=1))
    os.replace(tmp, state_dir / "state.json")


def clear_state(state_dir: Path, pid: int) -> None:
    """Remove state.json if it still describes the twin owned by `pid`."""
    with contextlib.suppress(UserError, OSError):
        if read_state(state_dir).get("pid") == pid:
            (state_dir / "state.json").unlink()


def running_twin(state_dir: Path) -> dict[str, Any] | None:
    """The state of a twin whose owner is still alive, else None (a stale file is removed)."""
    if not (state_dir / "state.json").exists():
        return None
    try:
        state = read_state(state_dir)
    except UserError:
        return None
    if pid_alive(int(state.get("pid", 0))):
        return state
    with contextlib.suppress(OSError):
        (state_dir / "state.json").unlink()
    return None


def serve(
    spec: TwinSpec,
    run_dir: Path,
    state_dir: Path,
    progress: Callable[[str], None],
    on_up: Callable[[dict[str, Any]], None] | None = None,
    kube_api: bool = False,
) -> None:
    """Boot a twin, publish its state, block until SIGTERM/SIGINT, then stop everything.
    With `kube_api` the state also holds the `kubernetes:` block for its emulated API."""
    from loadgate.twin.stack import Twin

    stop = threading.Event()
    booted = threading.Event()

    def on_signal(signum, _frame) -> None:
        if not booted.is_set():  # interrupt the boot itself: Twin.up cleans up and re-raises
            raise KeyboardInterrupt
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    pid = os.getpid()
    try:
        with Twin.up(spec, run_dir, progress, kube_api=kube_api) as twin:
            booted.set()
            state = {"pid": pid, "status": "up", "started": time.time(), **twin.endpoints()}
            if kube_api:
                state["kubernetes"] = twin.kubernetes_block()
            write_state(state_dir, state)
            if on_up:
                on_up(state)
            while not stop.wait(0.5):
                pass
            progress("stopping the twin")
    finally:
        clear_state(state_dir, pid)
        for s, h in previous.items():
            signal.signal(s, h)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m loadgate.twin.daemon")
    ap.add_argument("--spec", required=True, help="TwinSpec as JSON")
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--kube-api", action="store_true", help="Serve the emulated Kubernetes API.")
    a = ap.parse_args(argv)

    def say(msg: str) -> None:
        print(f"loadgate: {msg}", flush=True)

    try:
        spec = TwinSpec.model_validate_json(Path(a.spec).read_text())
        serve(spec, Path(a.run_dir), Path(a.state_dir), say, kube_api=a.kube_api)
    except UserError as e:
        print(f"loadgate: error: {e}", flush=True)
        return 2
    except KeyboardInterrupt:
        return 130
    say("twin stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
