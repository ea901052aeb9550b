"""One generator process's capacity and open-loop accuracy (issue 4, item 6).

Side by side in one run, against a trivial grpcio KServe v2 server started here (it answers at
once: the figures are the client's cost):
  1. a plain grpcio loop (blocking calls, one thread) and a pipelined one (futures, 32 in flight);
  2. Locust's documented gRPC pattern (a client interceptor firing `events.request`);
  3. loadgate's closed-loop users (one sample row per call, Locust events, row shipping);
  4. loadgate's open-loop generator at 50 %, 80 % (the target) and 100 % of (3): achieved/target
     rate, lag p50/p99, calls per CPU-second.
Streaming: loadgate's llm_stream user against 20-message streams.

Run: .venv/bin/python bench/generator.py [--seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import grpc
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc

from loadgate.procs import free_port, port_open, spawn, stop, wait_until
from loadgate.traffic.kserve import build_request
from loadgate.traffic.runner import start_scenario
from loadgate.traffic.scenario import Scenario, TrafficClass

USERS = 50  # Locust users for the closed-loop capacity runs
LLM_UNARY = {"name": "unary", "model": "llm", "kind": "llm_unary", "max_tokens": 1}


# -- the trivial server --------------------------------------------------------------------


class Trivial(pb_grpc.GRPCInferenceServiceServicer):
    MD = (("x-pod-name", "trivial-0"),)

    async def ServerLive(self, request, context):
        return pb.ServerLiveResponse(live=True)

    async def ModelInfer(self, request, context):
        await context.send_initial_metadata(self.MD)
        return pb.ModelInferResponse(model_name=request.model_name)

    async def ModelStreamInfer(self, request_iterator, context):
        await context.send_initial_metadata(self.MD)
        async for req in request_iterator:
            n = req.parameters["max_tokens"].int64_param or 1
            for _ in range(n):
                r = pb.ModelInferResponse(model_name=req.model_name)
                r.parameters["tokens"].int64_param = 1
                yield pb.ModelStreamInferResponse(infer_response=r)


async def _serve(port: int) -> None:
    server = grpc.aio.server()
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(Trivial(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


# -- 1. plain grpcio -----------------------------------------------------------------------


def _request() -> pb.ModelInferRequest:
    return build_request(TrafficClass.model_validate(LLM_UNARY))


def plain_loop(target: str, seconds: float) -> float:
    channel = grpc.insecure_channel(target)
    stub = pb_grpc.GRPCInferenceServiceStub(channel)
    req = _request()
    n, end = 0, time.monotonic() + seconds
    t0 = time.monotonic()
    while time.monotonic() < end:
        stub.ModelInfer(req, timeout=30)
        n += 1
    channel.close()
    return n / (time.monotonic() - t0)


def plain_pipelined(target: str, seconds: float, depth: int = 32) -> float:
    channel = grpc.insecure_channel(target)
    stub = pb_grpc.GRPCInferenceServiceStub(channel)
    req = _request()
    futs = [stub.ModelInfer.future(req, timeout=30) for _ in range(depth)]
    n, end, t0 = 0, time.monotonic() + seconds, time.monotonic()
    while time.monotonic() < end:
        futs.pop(0).result()
        n += 1
        futs.append(stub.ModelInfer.future(req, timeout=30))
    for f in futs:
        f.result()
    channel.close()
    return n / (time.monotonic() - t0)


# -- 2. Locust's documented interceptor pattern --------------------------------------------

INTERCEPTOR_LOCUSTFILE = textwrap.dedent(
    """
    import time
    import grpc
    import grpc.experimental.gevent as grpc_gevent
    from locust import User, task, events
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


def steady_window(history_csv: Path, skip_s: float = 2.0) -> tuple[float, float, int]:
    """(t_start, t_end, calls) between the first history row with every user running (+skip_s)
    and the last row, from Locust's cumulative 'Total Request Count' (robust to slow starts)."""
    with open(history_csv) as f:
        rows = [r for r in csv.DictReader(f) if r["Name"] == "Aggregated"]
    full = [r for r in rows if int(r["User Count"]) >= USERS]
    if len(full) < 2:
        return 0.0, 0.0, 0
    t_first = int(full[0]["Timestamp"]) + skip_s
    start = next((r for r in full if int(r["Timestamp"]) >= t_first), full[0])
    end = full[-1]
    calls = int(end["Total Request Count"]) - int(start["Total Request Count"])
    return float(start["Timestamp"]), float(end["Timestamp"]), calls


class CpuSampler(threading.Thread):
    """CPU seconds (user + system) of one process, sampled twice a second from /proc, so a
    figure per CPU-second can be had despite other load on the machine."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.samples, self.done = pid, [], threading.Event()
        self.tick = os.sysconf("SC_CLK_TCK")

    def run(self) -> None:
        while not self.done.is_set():
            try:
                fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                return
            self.samples.append((time.time(), (int(fields[11]) + int(fields[12])) / self.tick))
            self.done.wait(0.5)

    def cpu_between(self, t0: float, t1: float) -> float:
        def at(t: float) -> float:
            return min(self.samples, key=lambda s: abs(s[0] - t))[1] if self.samples else 0.0

        return at(t1) - at(t0)


def figures(history_csv: Path, sampler: CpuSampler) -> tuple[float, float]:
    """(calls per wall second, calls per CPU second of the generator process) in the steady
    window."""
    t0, t1, calls = steady_window(history_csv)
    if t1 <= t0:
        return 0.0, 0.0
    cpu = sampler.cpu_between(t0, t1)
    return calls / (t1 - t0), (calls / cpu if cpu > 0 else 0.0)


def locust_interceptor(target: str, seconds: float, work: Path) -> tuple[float, float]:
    lf = work / "interceptor_locustfile.py"
    lf.write_text(INTERCEPTOR_LOCUSTFILE)
    cmd = [sys.executable, "-m", "locust", "-f", str(lf), "--headless", "--host", target]
    cmd += ["-u", str(USERS), "-r", str(USERS), "-t", f"{int(seconds + 4)}s", "--only-summary"]
    cmd += ["--csv", str(work / "interceptor")]
    proc = spawn(cmd, work / "interceptor.log")
    sampler = CpuSampler(proc.pid)
    sampler.start()
    try:
        proc.wait(timeout=seconds + 60)
    finally:
        sampler.done.set()
        stop(proc)
    return figures(work / "interceptor_stats_history.csv", sampler)


def sampled_run(scenario: Scenario, target: str, out: Path):
    """A loadgate run with its generator process's CPU sampled: (result, sampler)."""
    handle = start_scenario(scenario, target, out)
    sampler = CpuSampler(handle.proc.pid)
    sampler.start()
    try:
        return handle.wait(), sampler
    finally:
        sampler.done.set()


def ours(scenario: Scenario, target: str, out: Path):
    result, sampler = sampled_run(scenario, target, out)
    return result, figures(out / "locust_stats_history.csv", sampler)


def open_run(scenario: Scenario, target: str, out: Path):
    """An open-loop run and its calls per CPU-second over the span its rows cover."""
    result, sampler = sampled_run(scenario, target, out)
    rows = result.samples
    cpu = sampler.cpu_between(rows["intended"].min(), rows["end"].max())
    return result, (len(rows) / cpu if cpu > 0 else 0.0)


# -- 3./4. loadgate's users ------------------------------------------------------------------


def closed(classes: list[dict], seconds: float) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "bench-closed",
            "arrival": "closed",
            "classes": classes,
            "phases": [{"name": "steady", "duration_s": seconds + 4, "users": USERS}],
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve))
        return 0
    s = args.seconds
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="loadgate-bench-gen-"))
    server = spawn([sys.executable, __file__, "--serve", str(port)], work / "server.log")
    target = f"127.0.0.1:{port}"
    try:
        wait_until(lambda: port_open("127.0.0.1", port), 20, what="trivial server")
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"trivial grpcio server on {target}; {s:.0f} s per measurement; work dir {work}")
        print(f"load average at the start: {load} (2 cores)")
        rows = []
        rows.append(
            ("plain grpcio, blocking loop (1 thread)", f"{plain_loop(target, s):,.0f} calls/s")
        )
        rows.append(
            ("plain grpcio, futures, 32 in flight", f"{plain_pipelined(target, s):,.0f} calls/s")
        )
        print(*rows[-2:], sep="\n")
        wall, per_cpu = locust_interceptor(target, s, work)
        rows.append(
            (
                f"Locust documented interceptor, {USERS} users",
                f"{wall:,.0f} calls/s; {per_cpu:,.0f} calls per CPU-second",
            )
        )
        print(rows[-1])
        r, (capacity, per_cpu) = ours(closed([LLM_UNARY], s), target, work / "ours-unary")
        rows.append(
            (
                f"loadgate closed-loop user (unary), {USERS} users",
                f"{capacity:,.0f} calls/s; {per_cpu:,.0f} calls per CPU-second "
                f"({len(r.samples):,} rows)",
            )
        )
        print(rows[-1])
        stream_cls = {"name": "stream", "model": "llm", "kind": "llm_stream", "max_tokens": 20}
        r, (streams, per_cpu) = ours(closed([stream_cls], s), target, work / "ours-stream")
        ok = r.samples[r.samples["status"] == "OK"]
        rows.append(
            (
                f"loadgate closed-loop user (20-message streams), {USERS} users",
                f"{streams:,.0f} streams/s = {streams * 20:,.0f} msg/s; {per_cpu:,.0f} streams "
                f"per CPU-second (tokens/row {ok['tokens'].mean():.0f})",
            )
        )
        print(rows[-1])
        for frac in (0.5, 0.8, 1.0):  # 1.0: headroom beyond the 80 % target
            rate = round(capacity * frac)
            r, per_cpu = open_run(open_loop(rate, s), target, work / f"open-{int(frac * 100)}")
            g = r.summary["generator"]
            rows.append(
                (
                    f"loadgate open loop at {frac:.0%} of capacity ({rate}/s)",
                    f"achieved/target {g['achieved_ratio']:.4f}, lag p50 {g['lag_p50_s'] * 1e3:.2f} ms, "
                    f"p99 {g['lag_p99_s'] * 1e3:.2f} ms, dropped {g['dropped']}, "
                    f"{'valid' if g['valid'] else 'INVALID'}; {per_cpu:,.0f} calls per CPU-second",
                )
            )
            print(rows[-1])
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"\nload average at the end: {load} (2 cores)")
        print("\n| measurement | result |\n|---|---|")
        for name, value in rows:
            print(f"| {name} | {value} |")
    finally:
        stop(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
