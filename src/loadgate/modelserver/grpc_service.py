"""KServe v2 `inference.GRPCInferenceService` and `grpc.health.v1.Health` over the accelerator.

Every RPC first sends initial metadata `x-pod-name` (so a stream's client knows its pod before
the first token). Request mistakes become the status Triton would return; nothing a client sends
can raise out of a handler.
"""

from __future__ import annotations

import asyncio
import contextlib

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc

from loadgate import __version__
from loadgate.modelserver import models
from loadgate.modelserver.config import ServerConfig
from loadgate.modelserver.engine import Accelerator, Timing
from loadgate.modelserver.models import CV, LLM, RequestError
from loadgate.modelserver.poses import LlmRequest, Pose
from loadgate.modelserver.statistics import model_statistics

_SERVICE = "inference.GRPCInferenceService"
_DONE = object()  # one stream request finished
_EOF = object()  # the client closed its side of the stream
TRITON_GRPC_ERROR = "triton_grpc_error"  # stream header: errors as gRPC status, stream closed
HALF_CLOSE_WAIT_S = 0.05
DECOUPLED_UNARY = "ModelInfer RPC doesn't support models with decoupled transaction policy"


class InferenceService(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, cfg: ServerConfig, acc: Accelerator) -> None:
        self.cfg = cfg
        self.acc = acc
        self.md = (("x-pod-name", cfg.pod_name),)
        self.streams: set[asyncio.Queue] = set()
        self.pose = Pose(cfg.llm_profile, cfg.max_batch_size)

    def drain(self) -> None:
        """SIGTERM: each open stream ends (status OK) once its requests are answered, instead of
        idling until the grace period runs out and the client sees a cancellation."""
        for out in self.streams:
            out.put_nowait(_EOF)

    async def ServerLive(self, request, context):
        await context.send_initial_metadata(self.md)
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request, context):
        await context.send_initial_metadata(self.md)
        return pb.ServerReadyResponse(ready=self.acc.readiness.ready)

    async def ModelReady(self, request, context):
        await context.send_initial_metadata(self.md)
        known = request.name in (LLM, CV) and request.version in ("", models.VERSION)
        return pb.ModelReadyResponse(ready=known and self.acc.readiness.ready)

    async def ServerMetadata(self, request, context):
        await context.send_initial_metadata(self.md)
        return pb.ServerMetadataResponse(
            name="loadgate-modelserver",
            version=__version__,
            extensions=["model_configuration", "statistics", "parameters", "loadgate_simulated"],
        )

    async def _known_model(self, request, context) -> None:
        """Initial metadata, then Triton's error (NOT_FOUND, ...) for an unknown model/version."""
        await context.send_initial_metadata(self.md)
        try:
            models.check_model(request.name, request.version)
        except RequestError as e:
            await context.abort(getattr(grpc.StatusCode, e.code), str(e))

    async def ModelMetadata(self, request, context):
        await self._known_model(request, context)
        return self.pose.metadata() if request.name == LLM else models.cv_metadata()

    async def ModelConfig(self, request, context):
        await self._known_model(request, context)
        cfg = (
            self.pose.config() if request.name == LLM else models.cv_config(self.cfg.max_batch_size)
        )
        return pb.ModelConfigResponse(config=cfg)

    async def ModelStatistics(self, request, context):
        """Triton's per-model counters and durations, from the same numbers as /metrics."""
        if request.name:
            await self._known_model(request, context)
        else:
            await context.send_initial_metadata(self.md)
        names = [request.name] if request.name else [LLM, CV]
        stats = [model_statistics(n, models.VERSION, self.acc.stats[n]) for n in names]
        return pb.ModelStatisticsResponse(model_stats=stats)

    async def ModelInfer(self, request, context):
        await context.send_initial_metadata(self.md)
        t = Timing(self.acc.now())
        try:
            models.check_model(request.model_name, request.model_version)
            if request.model_name == CV:
                return await self._classify(request, t)
            if not self.pose.unary_ok:
                raise RequestError("UNIMPLEMENTED", DECOUPLED_UNARY)
            llm = self._parse_llm(request)
            tokens = 0
            try:
                async with contextlib.aclosing(
                    self.acc.generate(llm.prompt_tokens, llm.max_tokens, llm.max_tokens, t)
                ) as gen:
                    async for n in gen:
                        tokens += n
            finally:
                self.acc.finish(LLM, t, 1)
            return self.pose.response(request.id, llm, tokens, final=True, first=True)
        except RequestError as e:  # refused before scheduling: not counted, as in Triton
            await context.abort(getattr(grpc.StatusCode, e.code), str(e))

    async def _classify(self, req: pb.ModelInferRequest, t: Timing) -> pb.ModelInferResponse:
        images = models.parse_cv(req, self.cfg.max_batch_size)
        try:
            await self.acc.classify(images, t)
        finally:
            self.acc.finish(CV, t, images)  # done or cancelled: counted once it ended
        return models.cv_response(req.id, images)

    def _parse_llm(self, request: pb.ModelInferRequest) -> LlmRequest:
        return self.pose.parse(request, self.cfg.default_max_tokens, self.cfg.default_prompt_tokens)

    async def ModelStreamInfer(self, request_iterator, context):
        """Requests on one stream run concurrently; their responses interleave, as in Triton.
        A failed request sends an in-band error_message, or, when the client started the stream
        with `triton_grpc_error: true` (Triton 24.08+), ends the stream with its gRPC status."""
        await context.send_initial_metadata(self.md)
        grpc_errors = any(
            k == TRITON_GRPC_ERROR and v == "true" for k, v in context.invocation_metadata() or ()
        )
        out: asyncio.Queue = asyncio.Queue()
        tasks: set[asyncio.Task] = set()
        pending = 0  # requests whose _DONE has not been read yet

        async def read() -> None:
            nonlocal pending
            try:
                async for req in request_iterator:
                    pending += 1
                    t = asyncio.create_task(self._stream_one(req, out, grpc_errors))
                    tasks.add(t)
                    t.add_done_callback(tasks.discard)
            except Exception:  # noqa: S110 - the client went away; the handler is cancelled too
                pass
            finally:
                out.put_nowait(_EOF)

        reader = asyncio.create_task(read())
        client_open = not self.acc.readiness.draining
        self.streams.add(out)
        try:
            # Each request's _DONE follows its last response in the queue, so nothing is lost.
            while client_open or pending:
                item = await out.get()
                if item is _EOF:
                    client_open = False
                elif item is _DONE:
                    pending -= 1
                elif isinstance(item, RequestError):
                    # Let the client's half-close arrive first (it follows its request at once):
                    # ending a stream whose request side is still open makes grpc send
                    # RST_STREAM after the trailers, and a proxy may then reset the client's
                    # stream (CANCELLED) instead of passing the status on.
                    await asyncio.wait({reader}, timeout=HALF_CLOSE_WAIT_S)
                    await context.abort(getattr(grpc.StatusCode, item.code), str(item))
                else:
                    yield item
        finally:
            self.streams.discard(out)
            reader.cancel()
            for t in list(tasks):
                t.cancel()

    async def _stream_one(
        self, req: pb.ModelInferRequest, out: asyncio.Queue, grpc_errors: bool
    ) -> None:
        t = Timing(self.acc.now())
        try:
            models.check_model(req.model_name, req.model_version)
            if req.model_name != LLM:
                # Not decoupled: one response, as Triton streams a non-decoupled model.
                resp = await self._classify(req, t)
                out.put_nowait(pb.ModelStreamInferResponse(infer_response=resp))
                return
            llm = self._parse_llm(req)
            try:
                await self._generate(req.id, llm, out, t)
            finally:
                self.acc.finish(LLM, t, 1)
        except RequestError as e:  # refused before scheduling: not counted, as in Triton
            out.put_nowait(e if grpc_errors else pb.ModelStreamInferResponse(error_message=str(e)))
        finally:
            out.put_nowait(_DONE)

    async def _generate(self, req_id: str, llm: LlmRequest, out: asyncio.Queue, t: Timing) -> None:
        """Stream the responses of one LLM request; one response at the end when it asked for
        no streaming (`stream` false)."""
        sent = 0
        # A request's messages differ only by (tokens, final, first): build each kind once.
        built: dict[tuple[int, bool, bool], pb.ModelStreamInferResponse] = {}
        chunk = None if llm.stream else llm.max_tokens
        async with contextlib.aclosing(
            self.acc.generate(llm.prompt_tokens, llm.max_tokens, chunk, t)
        ) as gen:
            async for n in gen:
                sent += n
                if not llm.stream:  # everything in one response once generation is done
                    if sent >= llm.max_tokens:
                        resp = self.pose.response(req_id, llm, sent, final=True, first=True)
                        out.put_nowait(pb.ModelStreamInferResponse(infer_response=resp))
                    continue
                key = (n, sent >= llm.max_tokens, sent == n)
                msg = built.get(key)
                if msg is None:
                    resp = self.pose.response(req_id, llm, *key)
                    msg = built[key] = pb.ModelStreamInferResponse(infer_response=resp)
                out.put_nowait(msg)


async def _unimplemented(self, request, context):
    await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not simulated by loadgate-modelserver")


# Repository, shared-memory, statistics, trace and log RPCs: a clean UNIMPLEMENTED instead of the
# generated stubs' NotImplementedError (which logs a traceback per call).
for _name in dir(pb_grpc.GRPCInferenceServiceServicer):
    if not _name.startswith("_") and _name not in InferenceService.__dict__:
        setattr(InferenceService, _name, _unimplemented)


class HealthService(health_pb2_grpc.HealthServicer):
    """grpc.health.v1 Check: SERVING while ready (readiness rule and not draining)."""

    def __init__(self, acc: Accelerator, pod_name: str) -> None:
        self.acc = acc
        self.md = (("x-pod-name", pod_name),)

    async def Check(self, request, context):
        await context.send_initial_metadata(self.md)
        if request.service not in ("", _SERVICE):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service '{request.service}'")
        S = health_pb2.HealthCheckResponse
        return S(status=S.SERVING if self.acc.readiness.ready else S.NOT_SERVING)


def add_services(server: grpc.aio.Server, cfg: ServerConfig, acc: Accelerator) -> InferenceService:
    inference = InferenceService(cfg, acc)
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(inference, server)
    health_pb2_grpc.add_HealthServicer_to_server(HealthService(acc, cfg.pod_name), server)
    return inference
