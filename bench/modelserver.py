"""Benchmark one loadgate-modelserver process: unary CV calls/s and streamed LLM tokens/s.

    .venv/bin/python bench/modelserver.py [--seconds 8] [--concurrency 32] [--streams 64]

The simulated durations are scaled down (tiny --time-scale) so the figures are the server's own
overhead: protocol, batching bookkeeping, metrics. The load generator is a plain grpcio (asyncio)
client in this process and competes with the server for the machine's cores, so the figures are
a lower bound of what the server alone sustains.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import grpc
import psutil
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc

from loadgate.modelserver.process import start_modelserver, wait_live
from loadgate.procs import free_port, stop

IMAGE = bytes(3 * 224 * 224)  # one UINT8 1x3x224x224 image, 150 KB


def cv_request() -> pb.ModelInferRequest:
    r = pb.ModelInferRequest(model_name="cv", id="b")
    r.inputs.add(name="image", datatype="UINT8", shape=[1, 3, 224, 224])
    r.raw_input_contents.append(IMAGE)
    return r


def llm_request(max_tokens: int) -> pb.ModelInferRequest:
    r = pb.ModelInferRequest(model_name="llm", id="s")
    r.parameters["max_tokens"].int64_param = max_tokens
    r.parameters["prompt_tokens"].int64_param = 64
    return r


async def bench_cv(target: str, seconds: float, concurrency: int) -> tuple[int, float]:
    # Serialized once: encoding a 150 KB message per call would measure this client, not the
    # server (a real load generator reuses its payload the same way).
    req = cv_request().SerializeToString()
    calls = 0
    async with grpc.aio.insecure_channel(target) as ch:
        infer = ch.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=None,
            response_deserializer=pb.ModelInferResponse.FromString,
        )
        assert (await infer(req, timeout=10)).outputs[0].name == "scores"  # warm up
        deadline = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal calls
            while time.monotonic() < deadline:
                await infer(req, timeout=10)
                calls += 1

        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return calls, time.monotonic() - t0


async def bench_stream(target: str, seconds: float, streams: int, max_tokens: int):
    req = llm_request(max_tokens)
    tokens = messages = 0
    async with grpc.aio.insecure_channel(target) as ch:
        stub = pb_grpc.GRPCInferenceServiceStub(ch)
        deadline = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal tokens, messages
            while time.monotonic() < deadline:
                call = stub.ModelStreamInfer(iter([req]), timeout=30)
                async for r in call:
                    tokens += r.infer_response.parameters["tokens"].int64_param
                    messages += 1

        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(streams)))
        return tokens, messages, time.monotonic() - t0


def with_server(log_dir: Path, name: str, run, **opts):
    """Run `run(target)` against a fresh server; returns its result and the server's CPU seconds
    (user + system) spent meanwhile, a figure the other load on the machine barely affects."""
    grpc_port, http_port = free_port(), free_port()
    proc = start_modelserver(name, grpc_port, http_port, log_dir / f"{name}.log", **opts)
    try:
        wait_live(http_port, timeout=20, proc=proc)
        ps = psutil.Process(proc.pid)
        before = ps.cpu_times()
        result = asyncio.run(run(f"127.0.0.1:{grpc_port}"))
        after = ps.cpu_times()
        return result, (after.user - before.user) + (after.system - before.system)
    finally:
        stop(proc, grace=10)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=8.0, help="duration of each measurement")
    ap.add_argument("--concurrency", type=int, default=32, help="CV calls in flight")
    ap.add_argument("--streams", type=int, default=64, help="LLM streams in flight")
    ap.add_argument("--max-tokens", type=int, default=2000, help="tokens per LLM stream")
    ap.add_argument("--chunks", default="1,4,16", help="token chunk sizes to measure")
    args = ap.parse_args(argv)
    log_dir = Path(tempfile.mkdtemp(prefix="loadgate-bench-"))
    rows: list[tuple[str, str, str]] = []

    print(
        f"CV: {args.concurrency} calls in flight, 150 KB UINT8 image, {args.seconds:g} s ...",
        flush=True,
    )
    (calls, dt), cpu = with_server(
        log_dir, "bench-cv",
        lambda t: bench_cv(t, args.seconds, args.concurrency),
        time_scale=0.001, max_batch_size=8,
    )  # fmt: skip
    rows.append(
        (
            "cv unary",
            f"{args.concurrency} in flight",
            f"{calls / dt:,.0f} calls/s",
            f"{cpu / calls * 1e6:,.0f} us/call -> {calls / cpu:,.0f} calls/s per core",
        )
    )

    for chunk in (int(c) for c in args.chunks.split(",")):
        print(
            f"LLM: {args.streams} streams x {args.max_tokens} tokens, chunk {chunk} ...", flush=True
        )
        (tokens, messages, dt), cpu = with_server(
            log_dir, f"bench-llm-{chunk}",
            lambda t: bench_stream(t, args.seconds, args.streams, args.max_tokens),
            time_scale=0.0001, max_batch_size=args.streams, token_chunk=chunk,
        )  # fmt: skip
        rows.append(
            (f"llm stream chunk={chunk}", f"{args.streams} streams",
             f"{tokens / dt:,.0f} tokens/s ({messages / dt:,.0f} msg/s)",
             f"{cpu / messages * 1e6:,.0f} us/msg -> {tokens / cpu:,.0f} tokens/s per core")
        )  # fmt: skip

    print(f"\n{'measurement':<22} {'load':<14} {'achieved':<36} server CPU")
    for row in rows:
        print(f"{row[0]:<22} {row[1]:<14} {row[2]:<36} {row[3]}")
    print(f"\n(server logs in {log_dir}; client and server share this machine's cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
