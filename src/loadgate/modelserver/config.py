"""Model server settings: command-line flags and an equivalent YAML file (flags win).

The YAML keys are the flag names with underscores, e.g. `grpc_port: 8001`, `time_scale: 0.01`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from pydantic import Field, ValidationError, model_validator

from loadgate.config import StrictModel, load_yaml_model
from loadgate.errors import UserError
from loadgate.llm_signatures import Profile
from loadgate.modelserver.latency import LatencyModel

_D = LatencyModel()


class ServerConfig(StrictModel):
    pod_name: str = Field("modelserver-0", min_length=1)
    host: str = "127.0.0.1"
    grpc_port: int = Field(8001, ge=0, le=65535)
    http_port: int = Field(8002, ge=0, le=65535)
    time_scale: float = Field(1.0, gt=0)
    max_batch_size: int = Field(8, ge=1, le=1024)
    ready_max_queue: int = Field(50, ge=0)  # 0 disables the readiness rule
    ready_resume_queue: int = Field(25, ge=0)
    token_chunk: int = Field(1, ge=1)
    grace_period: float = Field(10.0, ge=0)  # real seconds
    prefill_base_ms: float = Field(_D.prefill_base_s * 1e3, ge=0)
    prefill_per_token_ms: float = Field(_D.prefill_per_token_s * 1e3, ge=0)
    decode_step_ms: float = Field(_D.decode_step_s * 1e3, ge=0)
    cv_batch_base_ms: float = Field(_D.cv_batch_base_s * 1e3, ge=0)
    cv_per_image_ms: float = Field(_D.cv_per_image_s * 1e3, ge=0)
    default_max_tokens: int = Field(50, ge=1)
    default_prompt_tokens: int = Field(128, ge=0)
    llm_profile: Profile = "loadgate"  # the backend whose signature the llm model has

    @model_validator(mode="after")
    def _resume_below_max(self) -> ServerConfig:
        if self.ready_max_queue and self.ready_resume_queue > self.ready_max_queue:
            raise ValueError(
                f"ready_resume_queue ({self.ready_resume_queue}) must not exceed "
                f"ready_max_queue ({self.ready_max_queue})"
            )
        return self

    def latency(self) -> LatencyModel:
        return LatencyModel(
            time_scale=self.time_scale,
            prefill_base_s=self.prefill_base_ms / 1e3,
            prefill_per_token_s=self.prefill_per_token_ms / 1e3,
            decode_step_s=self.decode_step_ms / 1e3,
            cv_batch_base_s=self.cv_batch_base_ms / 1e3,
            cv_per_image_s=self.cv_per_image_ms / 1e3,
        )


_HELP = {
    "pod_name": "identity sent as x-pod-name on every response",
    "host": "address to bind",
    "grpc_port": "KServe v2 gRPC port (0 = pick a free one)",
    "http_port": "HTTP port for /metrics and /v2/health/* (0 = pick a free one)",
    "time_scale": "multiplies every simulated duration (0.01 = 100x faster)",
    "max_batch_size": "LLM sequences decoding at once; CV images per batch",
    "ready_max_queue": "not ready when the queue exceeds this (0 disables the rule)",
    "ready_resume_queue": "ready again when the queue has drained to this",
    "token_chunk": "tokens per stream message after the first",
    "grace_period": "real seconds to finish in-flight requests after SIGTERM",
    "prefill_base_ms": "simulated fixed cost of an LLM prefill",
    "prefill_per_token_ms": "simulated prefill cost per prompt token",
    "decode_step_ms": "simulated time per generated token (one decode step)",
    "cv_batch_base_ms": "simulated fixed cost of one CV batch",
    "cv_per_image_ms": "simulated CV cost per image in the batch",
    "default_max_tokens": "tokens generated when a request omits max_tokens",
    "default_prompt_tokens": "prompt length assumed when a request omits prompt_tokens",
    "llm_profile": "the llm model poses as this backend: loadgate, vllm or tensorrtllm",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="loadgate-modelserver",
        description="Simulated KServe v2 / Triton inference server (models llm and cv).",
        argument_default=argparse.SUPPRESS,  # only flags actually given override the file
    )
    p.add_argument("--config", metavar="FILE", help="YAML file with the same keys as the flags")
    for name, field in ServerConfig.model_fields.items():
        kind = field.annotation if field.annotation in (int, float, str) else str
        p.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            type=kind,
            metavar=kind.__name__.upper(),
            help=f"{_HELP.get(name, name.replace('_', ' '))} (default {field.default})",
        )
    return p


def parse_config(argv: Sequence[str] | None = None) -> ServerConfig:
    """Flags over file over defaults. argparse exits 2 on a malformed flag; the rest raises
    UserError."""
    args = vars(build_parser().parse_args(argv))
    path = args.pop("config", None)
    base = load_yaml_model(ServerConfig, path).model_dump(exclude_unset=True) if path else {}
    try:
        return ServerConfig.model_validate({**base, **args})
    except ValidationError as e:
        first = e.errors()[0]
        where = "--" + str(first["loc"][0]).replace("_", "-") + ": " if first["loc"] else ""
        msg = first["msg"].removeprefix("Value error, ")
        raise UserError(f"{path + ' + flags' if path else 'flags'}: {where}{msg}") from None
