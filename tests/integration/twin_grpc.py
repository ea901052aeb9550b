"""gRPC helpers for the twin's integration tests (tritonclient stubs over grpcio)."""

from __future__ import annotations

import grpc
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pbg


def stub(target: str) -> tuple[grpc.Channel, pbg.GRPCInferenceServiceStub]:
    channel = grpc.insecure_channel(target)
    return channel, pbg.GRPCInferenceServiceStub(channel)


def llm(max_tokens: int, prompt_tokens: int = 16) -> pb.ModelInferRequest:
    req = pb.ModelInferRequest(model_name="llm")
    req.parameters["max_tokens"].int64_param = max_tokens
    req.parameters["prompt_tokens"].int64_param = prompt_tokens
    return req


def cv_image() -> pb.ModelInferRequest:
    """A 1x3x224x224 UINT8 image (150 KB): larger than one HTTP/2 window, so the request body is
    still uploading when the proxy decides."""
    req = pb.ModelInferRequest(model_name="cv")
    req.inputs.add(name="image", datatype="UINT8", shape=[1, 3, 224, 224])
    req.raw_input_contents.append(bytes(3 * 224 * 224))
    return req


def headers(call) -> dict[str, str]:
    return {k: v for k, v in (call.initial_metadata() or ())}


def infer(s, max_tokens: int = 1, timeout: float = 30) -> dict[str, str]:
    """One unary call; returns its response headers (x-upstream-host, x-pod-name)."""
    _resp, call = s.ModelInfer.with_call(llm(max_tokens), timeout=timeout)
    return headers(call)


def stream(s, max_tokens: int, timeout: float = 60) -> tuple[int, dict[str, str], grpc.StatusCode]:
    """One ModelStreamInfer request (the client half-closes after it); returns
    (messages received, response headers, final status code)."""
    call = s.ModelStreamInfer(iter([llm(max_tokens)]), timeout=timeout)
    n = 0
    for msg in call:
        assert not msg.error_message, msg.error_message
        n += 1
    return n, headers(call), call.code()
