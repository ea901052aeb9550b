"""How many generator processes `loadgate run --processes auto` starts: one per core the stack
leaves free on this machine.

A target on another machine leaves every core this process may use to the generators (Locust's
master only collects rows). A stack on this machine (the twin the run boots, or any target at a
loopback or local address) needs cores of its own: the twin one per pod plus one for Envoy and
one for Prometheus and the supervisor; an unknown local stack is given half the cores. At least
one process always runs.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass

import psutil

AUTO = "auto"


@dataclass(frozen=True)
class Choice:
    processes: int
    why: str  # one line for the progress output and the summary


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def local_addresses() -> set[str]:
    addrs = {"localhost"}
    for nics in psutil.net_if_addrs().values():
        addrs.update(
            a.address.split("%")[0] for a in nics if a.family in (socket.AF_INET, socket.AF_INET6)
        )
    return addrs


def is_local(target: str) -> bool:
    """Whether HOST:PORT is this machine (loopback, or one of its interfaces' addresses)."""
    host = target.rpartition(":")[0].strip("[]")
    try:
        if ipaddress.ip_address(host).is_loopback:
            return True
    except ValueError:  # a name: resolve it
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return False  # unresolvable here: not this machine (the run's check will say more)
        resolved = {i[4][0] for i in infos}
        return any(ipaddress.ip_address(a).is_loopback for a in resolved) or bool(
            resolved & local_addresses()
        )
    return host in local_addresses()


def auto_processes(target: str, twin_pods: int | None, cores: int | None = None) -> Choice:
    """`twin_pods`: the pods of the twin this run booted (None: no twin)."""
    cores = cores or usable_cores()
    if twin_pods is not None:
        stack, where = twin_pods + 2, f"the twin here uses ~{twin_pods + 2}"
    elif is_local(target):
        stack, where = cores // 2, f"a stack on this machine ({target}) is given {cores // 2}"
    else:
        stack, where = 0, "the target is on another machine"
    n = max(1, cores - stack)
    return Choice(n, f"auto: {n} of {cores} cores ({where})")


def resolve(value: str | int, target: str, twin_pods: int | None) -> Choice:
    if value == AUTO:
        return auto_processes(target, twin_pods)
    n = int(value)
    return Choice(n, f"{n} (--processes)")
