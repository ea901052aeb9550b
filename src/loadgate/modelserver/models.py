"""The simulated models' names and errors, and the `cv` model (pure; errors are values).

`cv`: input `image` UINT8 or FP32 [b, 3, 224, 224] with 1 <= b <= max batch; output `scores` FP32
[b, 1000]. The `llm` model's signature depends on the backend it poses as: `poses`.
"""

from __future__ import annotations

import math
import struct

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


def cv_metadata() -> pb.ModelMetadataResponse:
    T = pb.ModelMetadataResponse.TensorMetadata
    return pb.ModelMetadataResponse(
        name=CV,
        versions=[VERSION],
        platform="loadgate_simulated",
        inputs=[T(name="image", datatype="UINT8", shape=[-1, *IMAGE_SHAPE])],
        outputs=[T(name="scores", datatype="FP32", shape=[-1, CLASSES])],
    )


def cv_config(max_batch: int) -> mc.ModelConfig:
    """A Triton model config, enough for tools that read batch size and tensors."""
    return mc.ModelConfig(
        name=CV,
        backend="loadgate_simulated",
        max_batch_size=max_batch,
        dynamic_batching=mc.ModelDynamicBatching(),
        input=[mc.ModelInput(name="image", data_type=mc.TYPE_UINT8, dims=list(IMAGE_SHAPE))],
        output=[mc.ModelOutput(name="scores", data_type=mc.TYPE_FP32, dims=[CLASSES])],
    )


def check_model(name: str, version: str) -> None:
    if name not in (LLM, CV) or version not in ("", VERSION):
        what = f"'{name}'" + (f" version {version}" if version else "")
        raise RequestError("NOT_FOUND", f"Request for unknown model: {what} is not found")


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
