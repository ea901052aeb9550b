"""Start model server processes from Python (the twin's supervisor, tests, benches).

proc = start_modelserver("pod-0", grpc_port, http_port, log_path, time_scale=0.05)
wait_live(http_port, timeout=15)
...
loadgate.procs.stop(proc, grace=12)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from loadgate.modelserver.config import ServerConfig
from loadgate.procs import http_status, spawn, wait_until


def modelserver_cmd(pod_name: str, grpc_port: int, http_port: int, **opts: Any) -> list[str]:
    """The command line of one server; `opts` are ServerConfig fields (e.g. time_scale=0.05)."""
    unknown = set(opts) - set(ServerConfig.model_fields)
    if unknown:
        raise TypeError(f"unknown model server option(s): {', '.join(sorted(unknown))}")
    cmd = [sys.executable, "-m", "loadgate.modelserver", "--pod-name", pod_name]
    cmd += ["--grpc-port", str(grpc_port), "--http-port", str(http_port)]
    for key, value in opts.items():
        if value is not None:
            cmd += ["--" + key.replace("_", "-"), str(value)]
    return cmd


def start_modelserver(
    pod_name: str,
    grpc_port: int,
    http_port: int,
    log_path: str | Path | None = None,
    **opts: Any,
) -> subprocess.Popen:
    """Spawn a server that dies with its parent (see `loadgate.procs.spawn`); does not wait."""
    return spawn(modelserver_cmd(pod_name, grpc_port, http_port, **opts), log_path)


def wait_live(
    http_port: int,
    timeout: float = 15.0,
    host: str = "127.0.0.1",
    proc: subprocess.Popen | None = None,
) -> None:
    """Block until /v2/health/live answers 200; raises TimeoutError (or RuntimeError when `proc`
    exits first)."""
    url = f"http://{host}:{http_port}/v2/health/live"

    def live() -> bool:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"model server exited with code {proc.returncode} before serving")
        return http_status(url, timeout=0.5) == 200

    wait_until(live, timeout, interval=0.05, what=f"model server live on {url}")
