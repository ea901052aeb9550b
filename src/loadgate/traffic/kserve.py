"""KServe v2 requests and responses over the tritonclient stubs (no gevent, no Locust here).

Requests are built once per traffic class and reused for every call (protobuf serialization of a
prebuilt message is the cheap part; building a 150 KB image tensor per call is not).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import grpc
from tritonclient.grpc import service_pb2 as pb

from loadgate.errors import UserError
from loadgate.traffic.profiles import build_llm_request
from loadgate.traffic.scenario import Client, TrafficClass

IMAGE_SHAPE = (1, 3, 224, 224)
_DTYPE_SIZE = {"UINT8": 1, "FP32": 4}
ERROR_CHARS = 160  # an error text on a sample row is cut to this
# One gRPC message may carry a 2000-token stream or an FP32 image; lift grpc's 4 MB default.
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    # Channels of one process must not share a subchannel (each is its own HTTP/2 connection).
    ("grpc.use_local_subchannel_pool", 1),
]


def build_request(cls: TrafficClass) -> pb.ModelInferRequest:
    if cls.kind != "cv":
        return build_llm_request(cls)
    req = pb.ModelInferRequest(model_name=cls.model)
    size = math.prod(IMAGE_SHAPE) * _DTYPE_SIZE[cls.image_dtype]
    req.inputs.add(name="image", datatype=cls.image_dtype, shape=list(IMAGE_SHAPE))
    req.raw_input_contents.append(bytes(size))
    return req


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


def _read(path, key: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise UserError(f"client.tls.{key} {path}: cannot read TLS file: {e.strerror}") from None


def check_client(client: Client, source: str) -> None:
    """The client settings this machine must supply (TLS files, metadata variables), checked
    before anything starts: one UserError line naming `source` (the scenario file)."""
    try:
        call_metadata(client)
        for key in ("ca", "cert", "key"):
            path = getattr(client.tls, key) if client.tls else None
            if path:
                _read(path, key)
    except UserError as e:
        raise UserError(f"{source}: {e}") from None


def open_channel(target: str, client: Client) -> grpc.Channel:
    """Plaintext (h2c) or TLS / mTLS channel to target `host:port`."""
    options = list(CHANNEL_OPTIONS)
    if client.tls is None:
        return grpc.insecure_channel(target, options=options)
    tls = client.tls
    creds = grpc.ssl_channel_credentials(
        root_certificates=_read(tls.ca, "ca") if tls.ca else None,
        private_key=_read(tls.key, "key") if tls.key else None,
        certificate_chain=_read(tls.cert, "cert") if tls.cert else None,
    )
    if tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return grpc.secure_channel(target, creds, options=options)


def short_error(text: str | None) -> str:
    """An error's words for a sample row: one line, at most ERROR_CHARS characters."""
    if not text:
        return ""
    line = " ".join(text.split())
    return line if len(line) <= ERROR_CHARS else line[: ERROR_CHARS - 3] + "..."


def error_text(err: BaseException) -> str:
    """The gRPC status details of a failed call ("" when it has none)."""
    details = getattr(err, "details", None)
    if callable(details):
        try:
            return short_error(details())
        except Exception:  # a call object that was never started has no details
            return ""
    return ""


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
