"""The twin's own figures: boot time, the breaker's rejection latency, and the proxy's overhead on
a unary call. Prints a small table; bounded in calls and time.

    .venv/bin/python bench/twin.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import grpc
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pbg

from loadgate.modelserver.models import MAX_TOKENS
from loadgate.procs import wait_until
from loadgate.twin.spec import TwinSpec
from loadgate.twin.stack import Twin

MAX_REQUESTS = 40


def llm(max_tokens: int) -> pb.ModelInferRequest:
    req = pb.ModelInferRequest(model_name="llm")
    req.parameters["max_tokens"].int64_param = max_tokens
    return req


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def pct(xs: list[float], q: float) -> float:
    return sorted(xs)[min(len(xs) - 1, int(q * len(xs)))]


def main() -> None:
    spec = TwinSpec(
        deployment="model",
        replicas=3,
        cluster_name="model",
        lb_policy="least_request",
        max_requests=MAX_REQUESTS,
        time_scale=0.05,  # llm(1) costs ~0.5 ms of simulated work: the rest is plumbing
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="lg-bench-") as d:
        t0 = time.monotonic()
        with Twin.up(spec, Path(d)) as twin:
            rows.append(
                ("boot: 3 pods + HAProxy + Prometheus (Twin.up)", f"{time.monotonic() - t0:.2f} s")
            )
            proxied = grpc.insecure_channel(twin.grpc_target)
            direct = grpc.insecure_channel(twin.platform().pods()[0].address)
            sp, sd = pbg.GRPCInferenceServiceStub(proxied), pbg.GRPCInferenceServiceStub(direct)
            for s in (sp, sd):
                timed(lambda s=s: s.ModelInfer(llm(1), timeout=10), 50)  # warm up
            via_proxy = timed(lambda: sp.ModelInfer(llm(1), timeout=10), 500)
            to_pod = timed(lambda: sd.ModelInfer(llm(1), timeout=10), 500)
            rows.append(
                (
                    "unary call to a pod, p50 / p99",
                    f"{pct(to_pod, 0.5):.2f} / {pct(to_pod, 0.99):.2f} ms",
                )
            )
            rows.append(
                (
                    "unary call through HAProxy, p50 / p99",
                    f"{pct(via_proxy, 0.5):.2f} / {pct(via_proxy, 0.99):.2f} ms",
                )
            )
            # Fill the breaker with long requests (MAX_TOKENS at time_scale 0.05: seconds), then
            # time the rejections.
            held = [sp.ModelInfer.future(llm(MAX_TOKENS), timeout=60) for _ in range(MAX_REQUESTS)]
            wait_until(lambda: twin.runtime.backend_sessions() == MAX_REQUESTS, 20, what="full")

            def rejected() -> None:
                try:
                    sp.ModelInfer(llm(1), timeout=10)
                except grpc.RpcError as e:
                    assert e.code() == grpc.StatusCode.UNAVAILABLE
                    return
                raise AssertionError("not rejected")

            rej = timed(rejected, 300)
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
