"""The twin's own figures: boot time, what the real Envoy adds per hop (unary latency and a
stream's first token, straight to a pod and through Envoy, side by side), and how fast the breaker
says no. Prints a table; bounded in calls and time.

    .venv/bin/python bench/twin.py [--calls 1000] [--streams 300]

Direct and proxied calls alternate one by one, so whatever else the machine is doing falls on
both sides alike; the difference of the two medians is Envoy's hop (client -> Envoy -> pod
instead of client -> pod, on loopback).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import grpc
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pbg

from loadgate.modelserver.models import MAX_TOKENS
from loadgate.procs import wait_until
from loadgate.twin.manifests import apply_overrides, load_twin_spec
from loadgate.twin.stack import Twin

MAX_REQUESTS = 40
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "k8s"


def llm(max_tokens: int) -> pb.ModelInferRequest:
    req = pb.ModelInferRequest(model_name="llm")
    req.parameters["max_tokens"].int64_param = max_tokens
    return req


def pct(xs: list[float], q: float) -> float:
    return sorted(xs)[min(len(xs) - 1, int(q * len(xs)))]


def unary_ms(stub: pbg.GRPCInferenceServiceStub) -> float:
    t0 = time.perf_counter()
    stub.ModelInfer(llm(1), timeout=10)
    return (time.perf_counter() - t0) * 1000


def first_token_ms(stub: pbg.GRPCInferenceServiceStub) -> float:
    t0 = time.perf_counter()
    call = stub.ModelStreamInfer(iter([llm(4)]), timeout=10)
    next(iter(call))
    ms = (time.perf_counter() - t0) * 1000
    for _ in call:  # drain: the stream ends normally
        pass
    return ms


def side_by_side(fn, direct, proxied, n: int) -> tuple[list[float], list[float]]:
    for s in (direct, proxied):  # warm up: connections, pools, caches
        for _ in range(20):
            fn(s)
    d, p = [], []
    for _ in range(n):
        d.append(fn(direct))
        p.append(fn(proxied))
    return d, p


def rows_for(name: str, d: list[float], p: list[float]) -> list[tuple[str, str]]:
    return [
        (f"{name} straight to a pod, p50 / p99", f"{pct(d, 0.5):.2f} / {pct(d, 0.99):.2f} ms"),
        (f"{name} through Envoy, p50 / p99", f"{pct(p, 0.5):.2f} / {pct(p, 0.99):.2f} ms"),
        (
            f"{name}: Envoy's hop, p50 / p99 difference",
            f"{pct(p, 0.5) - pct(d, 0.5):+.2f} / {pct(p, 0.99) - pct(d, 0.99):+.2f} ms",
        ),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=1000, help="unary calls per side")
    ap.add_argument("--streams", type=int, default=300, help="streams per side")
    args = ap.parse_args()
    # llm(1) costs ~0.5 ms of simulated work at time_scale 0.05: the rest is plumbing.
    spec = apply_overrides(
        load_twin_spec(FIXTURES), max_requests=MAX_REQUESTS, no_autoscaler=True, time_scale=0.05
    )
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="lg-bench-") as d:
        t0 = time.monotonic()
        with Twin.up(spec, Path(d)) as twin:
            rows.append(
                (
                    f"boot: 3 pods + Envoy {twin.envoy_version} + Prometheus (Twin.up)",
                    f"{time.monotonic() - t0:.2f} s",
                )
            )
            proxied = grpc.insecure_channel(twin.grpc_target)
            direct = grpc.insecure_channel(twin.platform().pods()[0].address)
            sp, sd = pbg.GRPCInferenceServiceStub(proxied), pbg.GRPCInferenceServiceStub(direct)
            rows += rows_for("unary call", *side_by_side(unary_ms, sd, sp, args.calls))
            rows += rows_for(
                "stream first token", *side_by_side(first_token_ms, sd, sp, args.streams)
            )
            # Fill the breaker with long requests (MAX_TOKENS at time_scale 0.05: seconds), then
            # time the rejections.
            held = [sp.ModelInfer.future(llm(MAX_TOKENS), timeout=60) for _ in range(MAX_REQUESTS)]
            admin = twin.envoy_admin()

            def full() -> bool:
                hosts = admin.clusters()[spec.cluster_name].hosts.values()
                return sum(h.rq_active for h in hosts) == MAX_REQUESTS

            wait_until(full, 20, what="breaker full")

            def rejected_ms() -> float:
                t = time.perf_counter()
                try:
                    sp.ModelInfer(llm(1), timeout=10)
                except grpc.RpcError as e:
                    assert e.code() == grpc.StatusCode.UNAVAILABLE
                    return (time.perf_counter() - t) * 1000
                raise AssertionError("not rejected")

            rej = [rejected_ms() for _ in range(300)]
            rows.append(
                (
                    "overflow -> UNAVAILABLE, p50 / p99",
                    f"{pct(rej, 0.5):.2f} / {pct(rej, 0.99):.2f} ms",
                )
            )
            rows.append(("overflow -> UNAVAILABLE, mean", f"{statistics.mean(rej):.2f} ms"))
            for f in held:
                f.cancel()
            proxied.close()
            direct.close()
            t1 = time.monotonic()
        rows.append(("down (everything stopped)", f"{time.monotonic() - t1:.2f} s"))
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
