"""Child processes that never outlive loadgate, free ports, and readiness waits.

Every process loadgate starts goes through `spawn`: the child gets PR_SET_PDEATHSIG so the kernel
sends it SIGTERM when the spawning thread dies (Ctrl-C, crash, kill -9 of the parent), and `stop`
escalates SIGTERM -> SIGKILL within a bounded grace period. Spawn from a thread that lives as long
as the child should (pdeathsig fires when the *thread* that forked exits).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from loadgate.errors import UserError

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass
    # Own process group: a terminal's Ctrl-C reaches loadgate, which then stops children in order.
    os.setpgrp()


def require_binary(name: str, hint: str = "") -> str:
    """Path of an executable, or a UserError that says how to get it."""
    path = shutil.which(name)
    if not path:
        raise UserError(f"'{name}' not found on PATH{': ' + hint if hint else ''}")
    return path


def _executable(prog: str, env: dict[str, str] | None) -> bool:
    if "/" in prog:
        return os.access(prog, os.X_OK)
    return shutil.which(prog, path=(env if env is not None else os.environ).get("PATH")) is not None


def spawn(
    cmd: Sequence[str],
    log_path: str | Path | None = None,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
) -> subprocess.Popen:
    """Start a child that dies with its parent; stdout+stderr go to log_path (or /dev/null;
    "-": this process's own; "-err": both to this process's stderr)."""
    if log_path in ("-", "-err"):
        out, log_path = (None if log_path == "-" else 2), None  # 2: stderr
    else:
        out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - Popen's
    # Prefer util-linux `setpriv --pdeathsig` (exec-time, same pid) over a preexec_fn: Python code
    # between fork and exec runs gRPC's at-fork handlers, which abort children forked from a
    # process with live gRPC channels ("epoll_wait error: Bad file descriptor", SIGABRT).
    setpriv = shutil.which("setpriv")
    if setpriv and not _executable(cmd[0], env):  # setpriv would only exit 127
        raise UserError(f"cannot start '{cmd[0]}': not found")
    try:
        if setpriv:
            return subprocess.Popen(
                [setpriv, "--pdeathsig", "TERM", "--", *cmd],
                stdout=out,
                stderr=subprocess.STDOUT if out is not None else None,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=cwd,
                process_group=0,  # own group, as _die_with_parent's setpgrp
                close_fds=True,
            )
        return subprocess.Popen(
            list(cmd),
            stdout=out,
            stderr=subprocess.STDOUT if out is not None else None,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            preexec_fn=_die_with_parent,
            close_fds=True,
        )
    except FileNotFoundError:
        raise UserError(f"cannot start '{cmd[0]}': not found") from None
    finally:
        if log_path:
            out.close()


def stop(proc: subprocess.Popen | None, grace: float = 5.0) -> int | None:
    """SIGTERM, wait up to `grace` s, then SIGKILL. Returns the exit code."""
    if proc is None:
        return None
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        except ProcessLookupError:
            pass
    return proc.returncode


def wait_exit(proc: subprocess.Popen) -> int:
    """`proc.wait()` in short slices: a signal that lands on another thread (grpc's, say) runs
    its Python handler only when the main thread runs again, which one long wait would delay
    until the child exits."""
    while True:
        try:
            return proc.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            continue


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now on host (the usual small race is accepted; callers retry on clash)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(predicate, timeout: float, interval: float = 0.05, what: str = "condition") -> None:
    """Poll `predicate` until true or raise TimeoutError naming `what`. Bounded by `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def http_status(url: str, timeout: float = 1.0) -> int | None:
    """HTTP status of a GET, or None when nothing answers. Only for loopback control endpoints."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, OSError):
        return None
