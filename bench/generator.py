"""Generator throughput per CPU-second, side by side in one run (issues 4 and 19).

Every client drives the same bench server (a grpc.aio KServe v2 server in its own process that
answers from pre-serialized messages, so its cost is as small as it gets), one after another:
  - plain grpcio: a blocking loop (1 thread) and a futures loop (32 in flight);
  - grpc.aio: unary (32 in flight) and streams (50 in flight);
  - Locust's documented gRPC pattern (a client interceptor firing `events.request`, 50 users);
  - loadgate's closed-loop users, unary and streams (50 users; a sample row per call);
  - perf_analyzer (the C++ client the tritonclient wheel ships), unary and --streaming, when it
    can run here (libb64-0d, libcudart from nvidia-cuda-runtime-cu12);
  - loadgate's open loop at 50 %, 80 % (the target) and 100 % of its closed-loop unary rate.
Calls and stream messages are counted by the server; "per CPU-second" divides them by the
client process's own user+system CPU time over the same window (from /proc), which other load
on the machine barely moves. Streams send one token per message (`--messages` per stream).

    .venv/bin/python bench/generator.py [--seconds 6] [--runs 3] [--messages 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import grpc
from support.bench_server import Counts, cpu_seconds  # bench/support/
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc

from loadgate.perf_analyzer import perf_analyzer
from loadgate.procs import free_port, port_open, spawn, stop, wait_until
from loadgate.traffic.kserve import build_request
from loadgate.traffic.runner import start_scenario
from loadgate.traffic.scenario import Scenario, TrafficClass

SERVER = Path(__file__).parent / "support" / "bench_server.py"
USERS = 50  # Locust users of the closed-loop runs
UNARY_DEPTH, STREAM_DEPTH = 32, 50  # in flight for the plain and aio loops, perf_analyzer
LLM_UNARY = {"name": "unary", "model": "llm", "kind": "llm_unary", "max_tokens": 1}
SERVICE = "inference.GRPCInferenceService"
WARMUP_S = 2.0


def measure(counts: Counts, pids: list[int], what: str, seconds: float) -> dict:
    """Once the client runs (its count moves), the counted `what` per wall second and per
    CPU-second of `pids` over `seconds`; the server's CPU per unit beside it."""
    first = counts()[what]
    wait_until(lambda: counts()[what] > first + 10, 90, what=f"{what} to flow")
    time.sleep(WARMUP_S)
    c0, t0 = counts(), time.monotonic()
    cpu0 = sum(cpu_seconds(p) for p in pids)
    srv0 = cpu_seconds(counts.server_pid)
    time.sleep(seconds)
    c1, t1 = counts(), time.monotonic()
    cpu1 = sum(cpu_seconds(p) for p in pids)
    srv1 = cpu_seconds(counts.server_pid)
    n = c1[what] - c0[what]
    return {
        "count": n,
        "rate": n / (t1 - t0),
        "per_cpu": n / (cpu1 - cpu0) if cpu1 > cpu0 else 0.0,
        "server_us": (srv1 - srv0) / n * 1e6 if n else 0.0,
    }


# -- clients in their own processes ----------------------------------------------------------


def _request() -> pb.ModelInferRequest:
    return build_request(TrafficClass.model_validate(LLM_UNARY))


def client_plain_blocking(target: str, until: float, _messages: int) -> None:
    stub = pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(target))
    req = _request()
    while time.monotonic() < until:
        stub.ModelInfer(req, timeout=30)


def client_plain_futures(target: str, until: float, _messages: int) -> None:
    stub = pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(target))
    req = _request()
    futs = [stub.ModelInfer.future(req, timeout=30) for _ in range(UNARY_DEPTH)]
    while time.monotonic() < until:
        futs.pop(0).result()
        futs.append(stub.ModelInfer.future(req, timeout=30))


def client_aio_unary(target: str, until: float, _messages: int) -> None:
    async def run() -> None:
        async with grpc.aio.insecure_channel(target) as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)
            req = _request()

            async def loop() -> None:
                while time.monotonic() < until:
                    await stub.ModelInfer(req, timeout=30)

            await asyncio.gather(*(loop() for _ in range(UNARY_DEPTH)))

    asyncio.run(run())


def client_aio_stream(target: str, until: float, messages: int) -> None:
    async def run() -> None:
        req = build_request(
            TrafficClass(name="s", model="llm", kind="llm_stream", max_tokens=messages)
        )
        async with grpc.aio.insecure_channel(target) as ch:
            call = ch.unary_stream(
                f"/{SERVICE}/ModelStreamInfer",
                request_serializer=pb.ModelInferRequest.SerializeToString,
                response_deserializer=pb.ModelStreamInferResponse.FromString,
            )

            async def loop() -> None:
                while time.monotonic() < until:
                    async for _ in call(req, timeout=30):
                        pass

            await asyncio.gather(*(loop() for _ in range(STREAM_DEPTH)))

    asyncio.run(run())


CLIENTS = {f.__name__.removeprefix("client_"): f for f in (
    client_plain_blocking, client_plain_futures, client_aio_unary, client_aio_stream
)}  # fmt: skip

INTERCEPTOR_LOCUSTFILE = textwrap.dedent(
    """
    # Locust's documented gRPC pattern: init_gevent, an interceptor firing events.request.
    import time
    import grpc
    import grpc.experimental.gevent as grpc_gevent
    from locust import User, task
    from tritonclient.grpc import service_pb2_grpc as pb_grpc
    from loadgate.traffic.kserve import build_request
    from loadgate.traffic.scenario import TrafficClass

    grpc_gevent.init_gevent()

    class LocustInterceptor(grpc.UnaryUnaryClientInterceptor):
        def __init__(self, environment):
            self.env = environment

        def intercept_unary_unary(self, continuation, client_call_details, request):
            start = time.perf_counter()
            exc = None
            response = continuation(client_call_details, request)
            try:
                response.result()
            except grpc.RpcError as e:
                exc = e
            self.env.events.request.fire(
                request_type="grpc", name=client_call_details.method,
                response_time=(time.perf_counter() - start) * 1000,
                response_length=0, response=None, context=None, exception=exc)
            return response

    class GrpcUser(User):
        def on_start(self):
            channel = grpc.intercept_channel(grpc.insecure_channel(self.host),
                                             LocustInterceptor(self.environment))
            self.stub = pb_grpc.GRPCInferenceServiceStub(channel)
            # the very request loadgate's user sends, so the comparison is like for like
            self.req = build_request(TrafficClass(name="unary", model="llm", kind="llm_unary",
                                                  max_tokens=1))

        @task
        def infer(self):
            self.stub.ModelInfer(self.req)
    """
)


# -- one run ---------------------------------------------------------------------------------


def closed(classes: list[dict], seconds: float) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "bench-closed",
            "arrival": "closed",
            "classes": classes,
            "phases": [{"name": "steady", "duration_s": seconds, "users": USERS}],
        }
    )


def open_loop(rate: float, seconds: float) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "bench-open",
            "arrival": "constant",
            "classes": [LLM_UNARY],
            "phases": [{"name": "steady", "duration_s": seconds, "rate": rate}],
            "generator": {"pool_size": 1000, "max_lag_p99_s": 0.005},
        }
    )


class Bench:
    def __init__(self, target: str, counts: Counts, s: float, messages: int, work: Path) -> None:
        self.target, self.counts, self.s, self.messages, self.work = (
            target, counts, s, messages, work,
        )  # fmt: skip
        self.budget = s + WARMUP_S + 60  # every client process ends by itself within this
        work.mkdir(parents=True, exist_ok=True)

    def subprocess_client(self, name: str, what: str) -> dict:
        until = time.monotonic() + self.budget  # the child's clock is the same monotonic one
        cmd = [sys.executable, __file__, "--client", name, "--target", self.target]
        cmd += ["--until", repr(until), "--messages", str(self.messages)]
        proc = spawn(cmd, self.work / f"{name}.log")
        try:
            return measure(self.counts, [proc.pid], what, self.s)
        finally:
            stop(proc)

    def locust_interceptor(self) -> dict:
        lf = self.work / "interceptor_locustfile.py"
        lf.write_text(INTERCEPTOR_LOCUSTFILE)
        cmd = [sys.executable, "-m", "locust", "-f", str(lf), "--headless", "--host", self.target]
        cmd += ["-u", str(USERS), "-r", str(USERS), "-t", f"{int(self.budget)}s", "--only-summary"]
        proc = spawn(cmd, self.work / "interceptor.log")
        try:
            return measure(self.counts, [proc.pid], "calls", self.s)
        finally:
            stop(proc)

    def loadgate(self, scenario: Scenario, what: str, name: str) -> tuple[dict, dict]:
        handle = start_scenario(scenario, self.target, self.work / name)
        try:
            fig = measure(self.counts, [handle.proc.pid], what, self.s)
        finally:
            result = handle.stop().wait()
        return fig, result.summary

    def perf_analyzer(self, streaming: bool) -> dict | str:
        found = perf_analyzer()
        if isinstance(found, str):
            return found
        cmd, env = found
        data = self.work / "pa.json"
        data.write_text(json.dumps({"data": [{"text_input": ["bench"]}]}))
        depth = STREAM_DEPTH if streaming else UNARY_DEPTH
        cmd = cmd + ["-i", "grpc", "-u", self.target, "--input-data", str(data)]
        cmd += ["--concurrency-range", str(depth), "--measurement-interval", "120000"]
        cmd += ["--max-trials", "1"]
        cmd += ["-m", "llm", "--streaming"] if streaming else ["-m", "llm-unary"]
        log = self.work / f"perf_analyzer{'-stream' if streaming else ''}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            return measure(self.counts, [proc.pid], "messages" if streaming else "calls", self.s)
        except TimeoutError:
            return f"did not start: see {log}"
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()

    def open_loop(self, rate: float) -> dict:
        """An open-loop run: loadgate's verdict on it, and rows per CPU-second over its schedule."""
        length = self.s + WARMUP_S
        handle = start_scenario(open_loop(rate, length), self.target, self.work / "open")
        began = handle.wait_load_started(timeout=60)
        cpu0 = cpu_seconds(handle.proc.pid)
        time.sleep(max(began + length + 0.5 - time.time(), 0.0))  # the schedule's end
        cpu1 = cpu_seconds(handle.proc.pid)
        result = handle.wait()
        rows = len(result.samples)
        return {**result.summary["generator"], "per_cpu": rows / max(cpu1 - cpu0, 1e-9)}


def one_run(bench: Bench) -> list[tuple[str, str, dict | str]]:
    """[(row name, unit, figures or why not run)] in the order measured. The open loop runs
    right after the closed-loop unary rate it is a fraction of (80 % first: the target), so
    the machine's load has the least time to drift between the two."""
    out = []

    def row(name: str, unit: str, fig) -> None:
        out.append((name, unit, fig))
        print(f"  {name}: {fmt(unit, fig)}", flush=True)

    sub = bench.subprocess_client
    row("plain grpcio, blocking loop, 1 thread", "calls", sub("plain_blocking", "calls"))
    row(f"plain grpcio, futures, {UNARY_DEPTH} in flight", "calls", sub("plain_futures", "calls"))
    row(f"grpc.aio unary, {UNARY_DEPTH} in flight", "calls", sub("aio_unary", "calls"))
    row(f"Locust documented interceptor, {USERS} users", "calls", bench.locust_interceptor())
    fig, _ = bench.loadgate(closed([LLM_UNARY], bench.budget), "calls", "ours-unary")
    row(f"loadgate closed-loop users, unary, {USERS} users", "calls", fig)
    for frac in (0.8, 0.5, 1.0):  # 1.0: headroom beyond the 80 % target
        fig = bench.open_loop(round(fig_rate(out) * frac))
        row(f"loadgate open loop at {frac:.0%} of that rate", "open", fig)
    row("perf_analyzer, unary", "calls", bench.perf_analyzer(streaming=False))
    stream = {"name": "stream", "model": "llm", "kind": "llm_stream", "max_tokens": bench.messages}
    fig, summary = bench.loadgate(closed([stream], bench.budget), "messages", "ours-stream")
    row(f"loadgate closed-loop users, streams, {USERS} users", "messages", fig)
    row(f"grpc.aio streams, {STREAM_DEPTH} in flight", "messages", sub("aio_stream", "messages"))
    row("perf_analyzer --streaming", "messages", bench.perf_analyzer(streaming=True))
    return out


def fig_rate(rows) -> float:
    """The closed-loop unary rate of loadgate's users in this run."""
    return next(f["rate"] for n, _, f in rows if n.startswith("loadgate closed-loop users, unary"))


def fmt(unit: str, fig) -> str:
    if isinstance(fig, str):
        return f"not run: {fig}"
    if unit == "open":
        return (
            f"{fig['target_rate']:,.0f}/s: achieved/target {fig['achieved_ratio']:.4f}, "
            f"lag p99 {fig['lag_p99_s'] * 1e3:.2f} ms, "
            f"dropped {fig['dropped']}, {'valid' if fig['valid'] else 'INVALID'}; "
            f"{fig['per_cpu']:,.0f} calls per CPU-s"
        )
    return (
        f"{fig['rate']:,.0f} {unit}/s, **{fig['per_cpu']:,.0f} per CPU-s** "
        f"(server {fig['server_us']:.0f} us each)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=6.0, help="measured window of each client")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--messages", type=int, default=50, help="messages (tokens) per stream")
    ap.add_argument("--client", choices=sorted(CLIENTS), help=argparse.SUPPRESS)
    ap.add_argument("--target", help=argparse.SUPPRESS)
    ap.add_argument("--until", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        CLIENTS[args.client](args.target, args.until, args.messages)
        return 0
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="loadgate-bench-gen-"))
    server = spawn(
        [sys.executable, str(SERVER), str(port), "--messages", str(args.messages)],
        work / "server.log",
    )
    target = f"127.0.0.1:{port}"
    runs = []
    try:
        wait_until(lambda: port_open("127.0.0.1", port), 20, what="bench server")
        counts = Counts(target, server.pid)
        print(f"bench server on {target}; {args.seconds:g} s per client; {args.messages} "
              f"one-token messages per stream; work dir {work}")  # fmt: skip
        for i in range(args.runs):
            load0 = os.getloadavg()
            print(f"run {i + 1}: {time.strftime('%Y-%m-%d %H:%M')}, load average {load0[0]:.1f}")
            rows = one_run(Bench(target, counts, args.seconds, args.messages, work / f"run{i}"))
            runs.append((load0, os.getloadavg(), rows))
    finally:
        stop(server)
    print_tables(runs)
    return 0


def print_tables(runs) -> None:
    print("\n| measurement | " + " | ".join(f"run {i + 1}" for i in range(len(runs))) + " |")
    print("|---|" + "---|" * len(runs))
    for j, (name, unit, _) in enumerate(runs[0][2]):
        cells = [fmt(unit, r[2][j][2]) for r in runs]
        print(f"| {name} | " + " | ".join(cells) + " |")

    def per_cpu(rows, prefix: str) -> float:
        fig = next(f for n, _, f in rows if n.startswith(prefix))
        return fig["per_cpu"] if isinstance(fig, dict) else float("nan")

    ratio = [
        per_cpu(r[2], "loadgate closed-loop users, unary") / per_cpu(r[2], "Locust documented")
        for r in runs
    ]
    msgs = [per_cpu(r[2], "loadgate closed-loop users, streams") for r in runs]
    print("| **unary: loadgate / Locust's pattern, per CPU-s** (target >= 1.2) | "
          + " | ".join(f"**{x:.2f}x**" for x in ratio) + " |")  # fmt: skip
    print("| **stream messages per CPU-s** (target >= 20,000) | "
          + " | ".join(f"**{x:,.0f}**" for x in msgs) + " |")  # fmt: skip
    print("| load average (1 min) at start -> end, 2 cores | "
          + " | ".join(f"{a[0]:.1f} -> {b[0]:.1f}" for a, b, _ in runs) + " |")  # fmt: skip


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
