"""Fixtures for integration tests (real processes). Others may append fixtures below."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from loadgate.modelserver.process import start_modelserver, wait_live
from loadgate.procs import free_port, stop


@dataclass
class RunningModelServer:
    pod_name: str
    grpc_port: int
    http_port: int
    proc: subprocess.Popen
    log_path: Path

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def modelserver_factory(tmp_path):
    """`start(**opts)` boots a model server on free ports (time_scale 0.05 unless given) and
    waits until it is live; every server is stopped at teardown, also on failure."""
    started: list[RunningModelServer] = []

    def start(pod_name: str | None = None, **opts) -> RunningModelServer:
        opts.setdefault("time_scale", 0.05)
        name = pod_name or f"pod-{len(started)}"
        for _attempt in range(3):  # free_port can race with another test run
            grpc_port, http_port = free_port(), free_port()
            log_path = tmp_path / f"{name}.log"
            proc = start_modelserver(name, grpc_port, http_port, log_path, **opts)
            server = RunningModelServer(name, grpc_port, http_port, proc, log_path)
            started.append(server)
            try:
                wait_live(http_port, timeout=20, proc=proc)
                return server
            except RuntimeError:
                if "in use" not in server.log():
                    raise RuntimeError(f"model server failed to start:\n{server.log()}") from None
        raise RuntimeError("model server: no free port after 3 attempts")

    try:
        yield start
    finally:
        for s in started:
            stop(s.proc, grace=15)


@pytest.fixture
def modelserver(modelserver_factory) -> RunningModelServer:
    """One model server with defaults and time_scale 0.05."""
    return modelserver_factory("pod-a")
