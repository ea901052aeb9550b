"""`--processes auto`: one generator per core the stack leaves free."""

import socket

import psutil
import pytest

from loadgate.traffic.processes import auto_processes, is_local, resolve


def test_a_remote_target_gets_every_core():
    c = auto_processes("192.0.2.10:8001", twin_pods=None, cores=8)  # TEST-NET: never local
    assert c.processes == 8 and "another machine" in c.why and "8 of 8" in c.why


def test_a_local_twin_keeps_cores_for_its_pods_envoy_and_prometheus():
    assert auto_processes("127.0.0.1:8001", twin_pods=3, cores=16).processes == 11
    assert auto_processes("127.0.0.1:8001", twin_pods=3, cores=2).processes == 1  # never 0


def test_a_local_target_without_a_twin_gets_half_the_cores():
    assert auto_processes("127.0.0.1:8001", twin_pods=None, cores=8).processes == 4
    assert auto_processes("[::1]:8001", twin_pods=None, cores=1).processes == 1


def test_local_addresses_and_names_are_this_machine():
    assert is_local("127.0.0.1:1") and is_local("localhost:1") and is_local("[::1]:1")
    mine = next(
        a.address
        for nics in psutil.net_if_addrs().values()
        for a in nics
        if a.family == socket.AF_INET
    )
    assert is_local(f"{mine}:8001")
    assert not is_local("192.0.2.10:8001") and not is_local("no-such-host.invalid:1")


@pytest.mark.parametrize(("value", "n"), [("auto", None), (3, 3)])
def test_resolve_says_why(value, n):
    c = resolve(value, "192.0.2.10:8001", None)
    assert c.why.startswith("auto:" if n is None else "3 (--processes)")
    assert n is None or c.processes == n
