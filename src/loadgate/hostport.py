"""`HOST:PORT` as every command takes it (`--target`, `--master`, `--master-bind`, `target:` and
`kubernetes.grpc_target` in loadgate.yaml): a host and a TCP port 1-65535, checked before
anything starts (gRPC would quietly wrap 99999 around to 34463)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from loadgate.errors import UserError


def problem(value: str, default_port: int | None = None) -> str:
    """What is wrong with `value` as HOST:PORT ("" when nothing is)."""
    host, sep, port = value.rpartition(":")
    if not sep:
        if default_port is None:
            return "expected HOST:PORT"
        host, port = value, str(default_port)
    if not host.strip("[]"):
        return "expected HOST:PORT (no host)"
    if not port.isdigit():
        return f"expected HOST:PORT (port {port!r} is not a number)"
    if not 0 < int(port) < 65536:
        return f"port {int(port)} is outside 1-65535"
    return ""


def parse(value: str, what: str, default_port: int | None = None) -> tuple[str, int]:
    """(host, port); a UserError naming `what` (the flag or key) otherwise."""
    why = problem(value, default_port)
    if why:
        raise UserError(f"{what} {value!r}: {why}")
    host, sep, port = value.rpartition(":")
    return (host, int(port)) if sep else (value, int(default_port or 0))


def _checked(value: str) -> str:
    why = problem(value)
    if why:
        raise ValueError(why)
    return value


# A config field holding HOST:PORT (pydantic names the file and key when it is wrong).
HostPort = Annotated[str, AfterValidator(_checked)]
