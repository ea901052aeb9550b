"""The two simulated models: their metadata and request validation (pure; errors are values).

`llm`: input `text_input` BYTES [1] (optional), request parameters `max_tokens` and
`prompt_tokens`; output `text_output` BYTES [1]. `cv`: input `image` UINT8 or FP32
[b, 3, 224, 224] with 1 <= b <= max batch; output `scores` FP32 [b, 1000].
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from tritonclient.grpc import model_config_pb2 as mc
from tritonclient.grpc import service_pb2 as pb

LLM, CV = "llm", "cv"
VERSION = "1"
IMAGE_SHAPE = (3, 224, 224)
CLASSES = 1000
MAX_TOKENS = 100_000  # bounds a request's memory and duration
_DTYPE_SIZE = {"UINT8": 1, "FP32": 4}


class RequestError(Exception):
    """A request Triton would reject; `code` is the grpc.StatusCode name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class LlmRequest:
    prompt_tokens: int
    max_tokens: int


def metadata(model: str, max_batch: int) -> pb.ModelMetadataResponse:
    T = pb.ModelMetadataResponse.TensorMetadata
    if model == LLM:
        ins = [T(name="text_input", datatype="BYTES", shape=[1])]
        outs = [T(name="text_output", datatype="BYTES", shape=[1])]
    else:
        ins = [T(name="image", datatype="UINT8", shape=[-1, *IMAGE_SHAPE])]
        outs = [T(name="scores", datatype="FP32", shape=[-1, CLASSES])]
    return pb.ModelMetadataResponse(
        name=model, versions=[VERSION], platform="loadgate_simulated", inputs=ins, outputs=outs
    )


def config(model: str, max_batch: int) -> pb.ModelConfigResponse:
    """A Triton model config, enough for tools that read batch size and tensors."""
    if model == LLM:
        cfg = mc.ModelConfig(
            name=LLM,
            backend="loadgate_simulated",
            model_transaction_policy=mc.ModelTransactionPolicy(decoupled=True),
            input=[mc.ModelInput(name="text_input", data_type=mc.TYPE_STRING, dims=[1])],
            output=[mc.ModelOutput(name="text_output", data_type=mc.TYPE_STRING, dims=[1])],
        )
    else:
        cfg = mc.ModelConfig(
            name=CV,
            backend="loadgate_simulated",
            max_batch_size=max_batch,
            dynamic_batching=mc.ModelDynamicBatching(),
            input=[mc.ModelInput(name="image", data_type=mc.TYPE_UINT8, dims=list(IMAGE_SHAPE))],
            output=[mc.ModelOutput(name="scores", data_type=mc.TYPE_FP32, dims=[CLASSES])],
        )
    return pb.ModelConfigResponse(config=cfg)


def check_model(name: str, version: str) -> None:
    if name not in (LLM, CV) or version not in ("", VERSION):
        what = f"'{name}'" + (f" version {version}" if version else "")
        raise RequestError("NOT_FOUND", f"Request for unknown model: {what} is not found")


def _int_param(req: pb.ModelInferRequest, key: str, default: int) -> int:
    if key not in req.parameters:
        return default
    p = req.parameters[key]
    kind = p.WhichOneof("parameter_choice")
    try:
        value = int(getattr(p, kind)) if kind else default
    except (TypeError, ValueError):
        value = -1
    if value < 0 or kind == "bool_param":
        raise RequestError("INVALID_ARGUMENT", f"parameter '{key}' must be a non-negative integer")
    return value


def parse_llm(req: pb.ModelInferRequest, default_max: int, default_prompt: int) -> LlmRequest:
    for t in req.inputs:
        if t.name != "text_input":
            raise RequestError(
                "INVALID_ARGUMENT", f"unexpected inference input '{t.name}' for model '{LLM}'"
            )
        if t.datatype != "BYTES":
            raise RequestError(
                "INVALID_ARGUMENT",
                f"inference input 'text_input' data-type is '{t.datatype}', but model '{LLM}' "
                "expects 'BYTES'",
            )
        if math.prod(t.shape) != 1:
            raise RequestError(
                "INVALID_ARGUMENT",
                f"unexpected shape for input 'text_input' for model '{LLM}'. Expected [1], "
                f"got {list(t.shape)}",
            )
    max_tokens = _int_param(req, "max_tokens", default_max)
    if not 1 <= max_tokens <= MAX_TOKENS:
        raise RequestError("INVALID_ARGUMENT", f"parameter 'max_tokens' must be 1..{MAX_TOKENS}")
    prompt_tokens = _int_param(req, "prompt_tokens", default_prompt)
    if prompt_tokens > MAX_TOKENS:
        raise RequestError("INVALID_ARGUMENT", f"parameter 'prompt_tokens' must be <= {MAX_TOKENS}")
    return LlmRequest(prompt_tokens, max_tokens)


def parse_cv(req: pb.ModelInferRequest, max_batch: int) -> int:
    """Number of images in a valid cv request."""
    if len(req.inputs) != 1 or req.inputs[0].name != "image":
        names = [t.name for t in req.inputs]
        raise RequestError(
            "INVALID_ARGUMENT", f"expected 1 input 'image' for model '{CV}', got {names}"
        )
    t = req.inputs[0]
    if t.datatype not in _DTYPE_SIZE:
        raise RequestError(
            "INVALID_ARGUMENT",
            f"inference input 'image' data-type is '{t.datatype}', but model '{CV}' expects "
            "'UINT8' or 'FP32'",
        )
    shape = tuple(t.shape)
    if len(shape) != 4 or shape[1:] != IMAGE_SHAPE or not 1 <= shape[0] <= max_batch:
        raise RequestError(
            "INVALID_ARGUMENT",
            f"unexpected shape for input 'image' for model '{CV}'. Expected "
            f"[-1,3,224,224] with batch 1..{max_batch}, got {list(shape)}",
        )
    if req.raw_input_contents:
        want = math.prod(shape) * _DTYPE_SIZE[t.datatype]
        got = len(req.raw_input_contents[0])
        if got != want:
            raise RequestError(
                "INVALID_ARGUMENT",
                f"input byte size mismatch for input 'image' for model '{CV}'. Expected {want}, "
                f"got {got}",
            )
    return shape[0]


def encode_bytes(value: bytes) -> bytes:
    """One BYTES tensor element in Triton's raw encoding (4-byte little-endian length prefix)."""
    return struct.pack("<I", len(value)) + value


_SCORES = struct.pack(f"<{CLASSES}f", *([1.0 / CLASSES] * CLASSES))


def cv_response(req_id: str, images: int) -> pb.ModelInferResponse:
    out = pb.ModelInferResponse.InferOutputTensor(
        name="scores", datatype="FP32", shape=[images, CLASSES]
    )
    return pb.ModelInferResponse(
        model_name=CV,
        model_version=VERSION,
        id=req_id,
        outputs=[out],
        raw_output_contents=[_SCORES * images],
    )


_TEXT_OUT = pb.ModelInferResponse.InferOutputTensor(name="text_output", datatype="BYTES", shape=[1])


def llm_response(req_id: str, tokens: int, final: bool) -> pb.ModelInferResponse:
    """`tokens` simulated tokens as text (" tok" each) plus a `tokens` count parameter."""
    r = pb.ModelInferResponse(
        model_name=LLM,
        model_version=VERSION,
        id=req_id,
        outputs=[_TEXT_OUT],
        raw_output_contents=[encode_bytes(b" tok" * tokens)],
    )
    r.parameters["tokens"].int64_param = tokens
    r.parameters["triton_final_response"].bool_param = final
    return r
