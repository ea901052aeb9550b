"""The bench server of bench/generator.py: a grpc.aio KServe v2 server answering from
pre-serialized messages (its own cost as small as grpcio's Python server gets), one token per
stream message, counting what it served; ServerMetadata's extensions carry the counts.
Model metadata and configs come from loadgate-modelserver's, so perf_analyzer can drive it
(`llm` decoupled for --streaming, `llm-unary` the same model not decoupled).

    .venv/bin/python bench/support/bench_server.py PORT [--messages 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import grpc
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc

from loadgate.modelserver.models import cv_config, cv_metadata
from loadgate.modelserver.poses import Pose

SERVICE = "inference.GRPCInferenceService"


def _stream_message() -> bytes:
    r = pb.ModelInferResponse(model_name="llm", id="b")
    r.parameters["tokens"].int64_param = 1  # one token per message
    return pb.ModelStreamInferResponse(infer_response=r).SerializeToString()


async def _serve(port: int, messages: int) -> None:
    counts = {"calls": 0, "streams": 0, "messages": 0}
    md = (("x-pod-name", "bench-0"),)
    unary = pb.ModelInferResponse(model_name="llm", id="b").SerializeToString()
    message = _stream_message()
    pose = Pose("loadgate", 8)

    async def infer(req, ctx):
        counts["calls"] += 1
        await ctx.send_initial_metadata(md)
        return unary

    async def stream(request_iterator, ctx):
        await ctx.send_initial_metadata(md)
        async for raw in request_iterator:
            req = pb.ModelInferRequest.FromString(raw)
            p = req.parameters.get("max_tokens")
            n = p.int64_param if p is not None else messages
            counts["streams"] += 1
            for _ in range(n):
                counts["messages"] += 1
                yield message

    async def metadata(raw, ctx):  # the bench reads the counts here
        ext = [f"{k}={v}" for k, v in counts.items()]
        return pb.ServerMetadataResponse(
            name="bench", version="1", extensions=ext
        ).SerializeToString()

    def config(name: str):
        if name == "cv":
            return cv_config(8)
        cfg = pose.config()
        if name == "llm-unary":  # perf_analyzer's unary runs need a model that is not decoupled
            cfg.name, cfg.model_transaction_policy.decoupled = name, False
        return cfg

    async def model_metadata(raw, ctx):
        name = pb.ModelMetadataRequest.FromString(raw).name
        meta = cv_metadata() if name == "cv" else pose.metadata()
        meta.name = name
        return meta.SerializeToString()

    async def model_config(raw, ctx):
        name = pb.ModelConfigRequest.FromString(raw).name
        return pb.ModelConfigResponse(config=config(name)).SerializeToString()

    def constant(response):
        data = response.SerializeToString()

        async def handler(raw, ctx):
            return data

        return handler

    handlers = {
        "ModelInfer": grpc.unary_unary_rpc_method_handler(infer),
        "ModelStreamInfer": grpc.stream_stream_rpc_method_handler(stream),
        "ServerMetadata": grpc.unary_unary_rpc_method_handler(metadata),
        "ModelMetadata": grpc.unary_unary_rpc_method_handler(model_metadata),
        "ModelConfig": grpc.unary_unary_rpc_method_handler(model_config),
    }
    for name, response in {
        "ServerLive": pb.ServerLiveResponse(live=True),
        "ServerReady": pb.ServerReadyResponse(ready=True),
        "ModelReady": pb.ModelReadyResponse(ready=True),
        "ModelStatistics": pb.ModelStatisticsResponse(),
    }.items():
        handlers[name] = grpc.unary_unary_rpc_method_handler(constant(response))
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


class Counts:
    """The bench server's counters, read over gRPC."""

    def __init__(self, target: str, server_pid: int) -> None:
        self.server_pid = server_pid
        self.channel = grpc.insecure_channel(target)
        self.stub = pb_grpc.GRPCInferenceServiceStub(self.channel)

    def __call__(self) -> dict[str, int]:
        ext = self.stub.ServerMetadata(pb.ServerMetadataRequest(), timeout=10).extensions
        return {k: int(v) for k, v in (e.split("=") for e in ext)}


def cpu_seconds(pid: int) -> float:
    """user + system CPU of a process (every thread), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("port", type=int)
    ap.add_argument("--messages", type=int, default=50, help="stream messages without max_tokens")
    args = ap.parse_args()
    asyncio.run(_serve(args.port, args.messages))
    return 0


if __name__ == "__main__":
    sys.exit(main())
