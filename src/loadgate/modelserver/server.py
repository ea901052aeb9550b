"""Wire the accelerator, gRPC and HTTP into one asyncio process; SIGTERM drains, then exits 0."""

from __future__ import annotations

import asyncio
import logging
import signal

import grpc

from loadgate.errors import UserError
from loadgate.modelserver import loop_lag
from loadgate.modelserver.config import ServerConfig
from loadgate.modelserver.engine import Accelerator
from loadgate.modelserver.grpc_service import add_services
from loadgate.modelserver.http_server import routes, serve_http
from loadgate.modelserver.metrics import render
from loadgate.modelserver.readiness import Readiness

log = logging.getLogger("loadgate.modelserver")


def build_accelerator(cfg: ServerConfig) -> Accelerator:
    readiness = Readiness(cfg.ready_max_queue, cfg.ready_resume_queue)
    return Accelerator(cfg.latency(), cfg.max_batch_size, readiness, cfg.token_chunk)


async def serve(cfg: ServerConfig) -> None:
    acc = build_accelerator(cfg)
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.so_reuseport", 0),  # a port clash must fail, not share the port silently
        ]
    )
    inference = add_services(server, cfg, acc)
    lag = loop_lag.LoopLag()
    try:
        grpc_port = server.add_insecure_port(f"{cfg.host}:{cfg.grpc_port}")
    except RuntimeError:
        grpc_port = 0
    if not grpc_port:
        raise UserError(f"cannot listen on {cfg.host}:{cfg.grpc_port} (gRPC): address in use?")
    try:
        http = await serve_http(
            routes(lambda: render(acc.stats) + loop_lag.render(lag), lambda: acc.readiness.ready),
            cfg.host,
            cfg.http_port,
        )
    except OSError as e:
        raise UserError(
            f"cannot listen on {cfg.host}:{cfg.http_port} (HTTP): {e.strerror}"
        ) from None
    http_port = http.sockets[0].getsockname()[1]
    await server.start()
    lag_task = asyncio.get_running_loop().create_task(lag.run())

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    log.info(
        "serving pod=%s grpc=%s:%d http=%s:%d models=llm,cv llm_profile=%s time_scale=%g "
        "max_batch_size=%d ready_max_queue=%d",
        cfg.pod_name, cfg.host, grpc_port, cfg.host, http_port, cfg.llm_profile, cfg.time_scale,
        cfg.max_batch_size, cfg.ready_max_queue,
    )  # fmt: skip
    await stopping.wait()

    # Terminating: readiness fails at once (the proxy stops routing here), new RPCs are refused,
    # in-flight ones get `grace_period` real seconds to finish; the HTTP side stays up meanwhile.
    acc.readiness.draining = True
    in_flight = (
        acc.llm.running + len(acc.llm.waiting) + len(acc.cv.waiting) + (1 if acc.cv.busy else 0)
    )
    log.info("SIGTERM: draining %d in-flight request(s), grace %.1fs", in_flight, cfg.grace_period)
    inference.drain()
    await server.stop(cfg.grace_period)
    lag_task.cancel()
    http.close()
    log.info("stopped")
