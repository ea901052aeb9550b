"""Scenario YAML: traffic classes (with their SLOs), arrival model, phases, generator limits,
client settings, and how `loadgate capacity` searches it.

`load_scenario(path)` is the one entry point; errors name the file and the key path.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, model_validator

from loadgate.config import StrictModel, load_yaml_model
from loadgate.llm_signatures import TENSORRTLLM, TRTLLM_SAMPLING, Profile

Kind = Literal["llm_stream", "llm_unary", "cv"]
Arrival = Literal["closed", "constant", "poisson"]
OPEN_LOOP: tuple[str, ...] = ("constant", "poisson")


SLO_PERCENTILES = (99, 95, 90)
STREAM_SLOS = tuple(f"{f}_p{p}_ms" for f in ("ttft", "itl") for p in SLO_PERCENTILES)  # streams


class Slo(StrictModel):
    """A class's service-level objectives, in milliseconds of wall-clock time as measured (on the
    twin that is after its time_scale). Each `*_pNN_ms` is both a per-call bound (a call slower
    than it is not goodput) and a limit on the class's NNth percentile over successful calls:
    at most 1 % (p99), 5 % (p95) or 10 % (p90) of them may be slower. Zero misses bound a p99
    from ~250 calls of the class per judged load on, a p95 from ~50, a p90 from ~25
    (docs/regression.md: choose the percentile the probes can measure)."""

    ttft_p99_ms: float | None = Field(None, gt=0)  # time to first token, from the scheduled send
    ttft_p95_ms: float | None = Field(None, gt=0)
    ttft_p90_ms: float | None = Field(None, gt=0)
    itl_p99_ms: float | None = Field(None, gt=0)  # a call's mean gap per token after the first
    itl_p95_ms: float | None = Field(None, gt=0)
    itl_p90_ms: float | None = Field(None, gt=0)
    latency_p99_ms: float | None = Field(None, gt=0)  # end-to-end, from the scheduled send
    latency_p95_ms: float | None = Field(None, gt=0)
    latency_p90_ms: float | None = Field(None, gt=0)
    error_rate_max: float = Field(0.01, ge=0, le=1)  # share of calls not OK (rejections count)


class TrafficClass(StrictModel):
    name: str = Field(min_length=1)
    model: str = Field(min_length=1)
    kind: Kind
    weight: float = Field(1.0, gt=0)
    max_tokens: int = Field(50, ge=1)  # LLM only
    prompt_tokens: int = Field(128, ge=0)  # LLM only
    deadline_s: float = Field(30.0, gt=0)  # per call, counted from the scheduled send
    image_dtype: Literal["UINT8", "FP32"] = "UINT8"  # CV only: 1x3x224x224 tensor
    # LLM only: whose inputs the requests carry and how tokens are counted (traffic/profiles.py)
    profile: Profile = "loadgate"
    token_count: Literal["reported", "responses"] = "reported"
    sampling: dict[str, bool | int | float | str] = Field(default_factory=dict)
    slo: Slo | None = None  # what `loadgate capacity` holds the class to; goodput counts it

    @model_validator(mode="after")
    def _profile_fits(self) -> TrafficClass:
        if self.kind == "cv" and (self.profile != "loadgate" or self.sampling):
            raise ValueError("profile and sampling apply to LLM classes only")
        if self.profile == "loadgate" and self.sampling:
            raise ValueError("sampling: profile loadgate sends no sampling settings")
        if self.profile != "loadgate" and self.prompt_tokens < 1:
            raise ValueError(f"profile {self.profile} needs prompt_tokens >= 1 (a prompt text)")
        if self.token_count == "responses" and self.kind == "llm_unary":
            raise ValueError("token_count responses counts streamed responses: not for llm_unary")
        if self.profile == "tensorrtllm":
            for key, value in self.sampling.items():
                _check_trtllm_setting(key, value)
        return self

    @model_validator(mode="after")
    def _slo_fits_kind(self) -> TrafficClass:
        if self.slo is not None and self.kind != "llm_stream":
            for key in STREAM_SLOS:
                if getattr(self.slo, key) is not None:
                    raise ValueError(f"slo.{key}: only llm_stream classes stream tokens")
        return self


def _check_trtllm_setting(key: str, value: object) -> None:
    if key not in TRTLLM_SAMPLING:
        raise ValueError(
            f"sampling.{key}: not a TensorRT-LLM input (one of {', '.join(TRTLLM_SAMPLING)})"
        )
    dtype = TENSORRTLLM.input(key).datatype
    ok = isinstance(value, float | int) if dtype == "FP32" else isinstance(value, int)
    if isinstance(value, bool) or not ok:
        raise ValueError(f"sampling.{key}: the {dtype} input needs a number, got {value!r}")


class Phase(StrictModel):
    name: str = Field(min_length=1)
    duration_s: float = Field(gt=0)
    rate: float | None = Field(None, ge=0)  # open-loop: arrivals/s at the phase start
    ramp_to: float | None = Field(None, ge=0)  # open-loop: rate at the phase end (linear)
    users: int | None = Field(None, ge=0)  # closed-loop: concurrent users
    spawn_rate: float | None = Field(None, gt=0)  # closed-loop: users started per second


class Generator(StrictModel):
    # At most pool_size open-loop calls in flight per generator process; an arrival that finds
    # them all busy is dropped (counted), never queued, so the schedule is never stretched.
    pool_size: int = Field(1000, ge=1)
    # A run whose send lag p99 exceeds this (or that dropped any arrival) is marked invalid:
    # its latencies describe the generator, not the stack.
    max_lag_p99_s: float = Field(0.05, gt=0)
    seed: int | None = None


class Tls(StrictModel):
    ca: Path | None = None  # PEM roots; system roots when omitted
    cert: Path | None = None  # client certificate (mTLS), with key
    key: Path | None = None
    server_name: str | None = None  # override the name checked against the server certificate

    @model_validator(mode="after")
    def _pair(self) -> Tls:
        if (self.cert is None) != (self.key is None):
            raise ValueError("cert and key must be given together (mTLS)")
        return self


class Client(StrictModel):
    tls: Tls | None = None
    # gRPC metadata key -> NAME of the environment variable holding its value. Values are read
    # in the generator process only and never written to any file.
    metadata_env: dict[str, str] = Field(default_factory=dict)
    served_by_header: str = "x-upstream-host"
    served_by_fallback: str = "x-pod-name"
    # Streams ask for Triton's (>= 24.08) `triton_grpc_error: true`: a failed request closes the
    # stream with its gRPC status instead of an in-band error_message that carries no code.
    stream_grpc_errors: bool = True


class Closed(StrictModel):
    wait_s: tuple[float, float] = (0.0, 0.0)  # closed-loop users wait between(min, max)


class CapacitySearch(StrictModel):
    """How `loadgate capacity` searches this scenario (flags override each key). The load is the
    open-loop rate (calls/s), or the number of users for `arrival: closed`."""

    start: float = Field(10.0, gt=0)  # first probe; doubled until a probe fails
    max: float = Field(1000.0, gt=0)  # never probe above this
    tolerance: float = Field(0.1, gt=0, lt=1)  # stop when the bracket's hi/lo <= 1 + tolerance
    warmup_s: float = Field(5.0, ge=0)  # per probe, at the probe's load, not judged
    measure_s: float = Field(15.0, gt=0)  # per probe, judged
    repeats: int = Field(1, ge=0, le=5)  # extra runs of a probe whose verdict is not decided
    refine: int = Field(0, ge=0, le=10)  # probes placed near the fitted capacity after bisecting
    budget_s: float | None = Field(None, gt=0)  # no refine probe that would end past this
    invalid_retries: int = Field(2, ge=0, le=5)  # extra runs of a probe whose generator fell behind

    @model_validator(mode="after")
    def _start_below_max(self) -> CapacitySearch:
        if self.start > self.max:
            raise ValueError(f"start ({self.start:g}) must not exceed max ({self.max:g})")
        return self


class Scenario(StrictModel):
    name: str = Field(min_length=1)
    description: str = ""
    arrival: Arrival = "poisson"
    classes: list[TrafficClass] = Field(min_length=1)
    phases: list[Phase] = Field(min_length=1)
    generator: Generator = Field(default_factory=Generator)
    client: Client = Field(default_factory=Client)
    closed: Closed = Field(default_factory=Closed)
    capacity: CapacitySearch | None = None  # None: CapacitySearch's defaults

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        names = [c.name for c in self.classes]
        if len(set(names)) != len(names):
            raise ValueError(f"class names must be unique (got {names})")
        for i, p in enumerate(self.phases):
            if self.open_loop and p.rate is None:
                raise ValueError(f"phases[{i}] ({p.name}): arrival {self.arrival} needs a rate")
            if not self.open_loop and p.users is None:
                raise ValueError(f"phases[{i}] ({p.name}): arrival closed needs users")
        return self

    @property
    def open_loop(self) -> bool:
        return self.arrival in OPEN_LOOP

    @property
    def duration_s(self) -> float:
        return sum(p.duration_s for p in self.phases)

    def phase_at(self, elapsed_s: float) -> str | None:
        """The phase scheduled at `elapsed_s` into the run (None once every phase has ended)."""
        end = 0.0
        for p in self.phases:
            end += p.duration_s
            if elapsed_s < end:
                return p.name
        return None

    @property
    def max_deadline_s(self) -> float:
        return max(c.deadline_s for c in self.classes)

    def with_llm_profile(self, profile: Profile) -> Scenario:
        """The same scenario with every LLM class on `profile` (a twin whose pods pose as that
        backend runs the gates' scenarios this way)."""
        data = self.model_dump()
        for c in data["classes"]:
            if c["kind"] != "cv":
                c["profile"] = profile
        return Scenario.model_validate(data)  # validated again: the classes must fit it

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json", exclude_none=True), sort_keys=False)

    def fingerprint(self) -> str:
        """Short hash of the validated scenario: a master and its workers must agree on it."""
        return hashlib.sha256(self.to_yaml().encode()).hexdigest()[:12]


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file (UserError naming file and key path on a mistake)."""
    return load_yaml_model(Scenario, path)
