"""KServe v2 requests and responses over the tritonclient stubs (no gevent, no Locust here).

Requests are built once per traffic class and reused for every call (protobuf serialization of a
prebuilt message is the cheap part; building a 150 KB image tensor per call is not).
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Mapping

import grpc
from tritonclient.grpc import service_pb2 as pb

from loadgate.errors import UserError
from loadgate.traffic.scenario import Client, TrafficClass

IMAGE_SHAPE = (1, 3, 224, 224)
_DTYPE_SIZE = {"UINT8": 1, "FP32": 4}
_PROMPT = b"Summarize the load test results in one paragraph."
# One gRPC message may carry a 2000-token stream or an FP32 image; lift grpc's 4 MB default.
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    # Channels of one process must not share a subchannel (each is its own HTTP/2 connection).
    ("grpc.use_local_subchannel_pool", 1),
]


def build_request(cls: TrafficClass) -> pb.ModelInferRequest:
    req = pb.ModelInferRequest(model_name=cls.model)
    if cls.kind == "cv":
        size = math.prod(IMAGE_SHAPE) * _DTYPE_SIZE[cls.image_dtype]
        req.inputs.add(name="image", datatype=cls.image_dtype, shape=list(IMAGE_SHAPE))
        req.raw_input_contents.append(bytes(size))
        return req
    req.inputs.add(name="text_input", datatype="BYTES", shape=[1])
    req.raw_input_contents.append(struct.pack("<I", len(_PROMPT)) + _PROMPT)
    req.parameters["max_tokens"].int64_param = cls.max_tokens
    req.parameters["prompt_tokens"].int64_param = cls.prompt_tokens
    return req


def response_figures(resp: pb.ModelInferResponse) -> tuple[int, int]:
    """(tokens, payload bytes) of one response message.

    Tokens: the `tokens` parameter when the server sends one (loadgate-modelserver does), else
    one per message (Triton's decoupled LLM backends send one token per response).
    """
    nbytes = sum(len(b) for b in resp.raw_output_contents)
    if "tokens" in resp.parameters:
        return int(resp.parameters["tokens"].int64_param), nbytes
    return 1, nbytes


def served_by(metadata: Mapping[str, str] | None, header: str, fallback: str) -> str:
    if not metadata:
        return ""
    return metadata.get(header) or metadata.get(fallback) or ""


def metadata_dict(md) -> dict[str, str]:
    """grpc initial metadata (tuple of (key, value), or None) -> dict."""
    return {k: v for k, v in md or () if isinstance(v, str)}


def call_metadata(client: Client, environ: Mapping[str, str] | None = None) -> tuple:
    """gRPC call metadata from the environment variables the scenario names (values never
    stored). A variable that is not set is a UserError naming it."""
    env = os.environ if environ is None else environ
    out = []
    for key, var in sorted(client.metadata_env.items()):
        if var not in env:
            raise UserError(f"client.metadata_env.{key}: environment variable {var} is not set")
        out.append((key.lower(), env[var]))
    return tuple(out)


def _read(path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise UserError(f"{path}: cannot read TLS file: {e.strerror}") from None


def open_channel(target: str, client: Client) -> grpc.Channel:
    """Plaintext (h2c) or TLS / mTLS channel to target `host:port`."""
    options = list(CHANNEL_OPTIONS)
    if client.tls is None:
        return grpc.insecure_channel(target, options=options)
    tls = client.tls
    creds = grpc.ssl_channel_credentials(
        root_certificates=_read(tls.ca) if tls.ca else None,
        private_key=_read(tls.key) if tls.key else None,
        certificate_chain=_read(tls.cert) if tls.cert else None,
    )
    if tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return grpc.secure_channel(target, creds, options=options)


def status_name(err: BaseException) -> str:
    """gRPC code name of a failed call (CANCELLED for a cancelled future)."""
    if isinstance(err, grpc.FutureCancelledError):
        return "CANCELLED"
    code = getattr(err, "code", None)
    if callable(code):
        c = code()
        if isinstance(c, grpc.StatusCode):
            return c.name
    return "UNKNOWN"
