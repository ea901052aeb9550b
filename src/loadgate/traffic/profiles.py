"""Request profiles: what an LLM class sends to a backend and how it counts that backend's tokens.

- `loadgate`: loadgate-modelserver's own dialect: a `text_input` tensor (not read) and the request
  parameters `max_tokens` / `prompt_tokens`; tokens = the `tokens` response parameter of each
  message (else one per message).
- `vllm`: Triton's vLLM backend: `text_input` (a prompt of `prompt_tokens` words), `stream`,
  `sampling_parameters` (JSON: max_tokens, min_tokens = max_tokens so the length is the class's,
  plus the class's `sampling`), `exclude_input_in_output`.
- `tensorrtllm`: the TensorRT-LLM `ensemble` / `tensorrt_llm_bls` models: `text_input`,
  `max_tokens` and `min_tokens` (INT32), `stream`, `exclude_input_in_output`, one tensor per
  `sampling` key; every tensor with the batch dimension ([1, 1]).
Backend streams ask for `triton_enable_empty_final_response`, so a stream whose backend flags the
end without a response (the BLS model does) still ends with a response marked final.

Token counts of the two backends (`token_count`): `reported` asks for `return_num_output_tokens`
and sums `num_output_tokens`, which both backends fill with the tokens of that response (exact);
`responses` counts one token per streamed response that carries `text_output` (exact while each
response carries one token: TRT-LLM with beam width 1 and no speculative decoding, vLLM without
multi-step or speculative decoding; an undercount otherwise).

Requests and readers are built once per class; a reader is the per-message hot path.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import grpc
from tritonclient.grpc import model_config_pb2 as mc
from tritonclient.grpc import service_pb2 as pb

from loadgate import llm_signatures as sig
from loadgate import tensors
from loadgate.errors import UserError
from loadgate.traffic.scenario import Scenario, TrafficClass

_LOADGATE_PROMPT = b"Summarize the load test results in one paragraph."
# Common English words that most BPE vocabularies hold as one token each (with the leading
# space), so a prompt of n words is about n tokens; the backend's own count is exact.
_WORDS = ("the", "of", "and", "to", "in", "for", "on", "with", "at", "by", "from", "as")

Figures = Callable[[pb.ModelInferResponse], tuple[int, int]]  # -> (tokens, payload bytes)


def prompt_text(words: int) -> bytes:
    return " ".join(_WORDS[i % len(_WORDS)] for i in range(words)).encode()


# -- requests --------------------------------------------------------------------------------


def _add(req: pb.ModelInferRequest, signature: sig.Signature, name: str, values: list) -> None:
    t = signature.input(name)
    req.inputs.add(name=name, datatype=t.datatype, shape=signature.request_shape(t))
    req.raw_input_contents.append(tensors.encode(t.datatype, values))


def build_llm_request(cls: TrafficClass) -> pb.ModelInferRequest:
    """The request one call of an LLM class sends (built once per class)."""
    req = pb.ModelInferRequest(model_name=cls.model)
    s = sig.SIGNATURES[cls.profile]
    if cls.profile == "loadgate":
        _add(req, s, sig.TEXT_INPUT, [_LOADGATE_PROMPT])
        req.parameters[sig.MAX_TOKENS].int64_param = cls.max_tokens
        req.parameters[sig.PROMPT_TOKENS].int64_param = cls.prompt_tokens
        return req
    stream = cls.kind == "llm_stream"
    if stream:  # so every complete stream ends with a response flagged final
        req.parameters[sig.TRITON_EMPTY_FINAL].bool_param = True
    _add(req, s, sig.TEXT_INPUT, [prompt_text(cls.prompt_tokens)])
    _add(req, s, sig.STREAM, [stream])
    _add(req, s, sig.EXCLUDE_INPUT, [True])
    lengths = {sig.MAX_TOKENS: cls.max_tokens, sig.MIN_TOKENS: cls.max_tokens}
    if cls.profile == "vllm":
        params = {**lengths, **cls.sampling}
        _add(req, s, sig.SAMPLING_PARAMETERS, [json.dumps(params, sort_keys=True).encode()])
    else:
        for name, value in {**lengths, **cls.sampling}.items():
            _add(req, s, name, [value])
    req.outputs.add(name=sig.TEXT_OUTPUT)
    if cls.token_count == "reported":
        _add(req, s, sig.RETURN_NUM_OUTPUT_TOKENS, [True])
        req.outputs.add(name=sig.NUM_OUTPUT_TOKENS)
    return req


# -- responses -------------------------------------------------------------------------------


def _payload(resp: pb.ModelInferResponse) -> int:
    raws = resp.raw_output_contents
    return sum(map(len, raws)) if raws else 0  # once per stream message: kept cheap


def loadgate_figures(resp: pb.ModelInferResponse) -> tuple[int, int]:
    """The `tokens` parameter when the server sends one (loadgate-modelserver does), else one per
    message."""
    params = resp.parameters
    if sig.TOKENS in params:
        return params[sig.TOKENS].int64_param, _payload(resp)
    return 1, _payload(resp)


def _per_message(resp: pb.ModelInferResponse) -> tuple[int, int]:
    return 1, _payload(resp)


def reported_figures(resp: pb.ModelInferResponse) -> tuple[int, int]:
    """Sum of `num_output_tokens` (UINT32 from vLLM, INT32 from TRT-LLM: never negative, so read
    as unsigned)."""
    raws = resp.raw_output_contents
    nbytes = _payload(resp)
    for i, out in enumerate(resp.outputs):
        if out.name == sig.NUM_OUTPUT_TOKENS and i < len(raws):
            raw = raws[i]
            return sum(struct.unpack(f"<{len(raw) // 4}I", raw)), nbytes
    return 0, nbytes


def response_counted(resp: pb.ModelInferResponse) -> tuple[int, int]:
    """One token per response that carries text (an empty final response carries none)."""
    text = any(out.name == sig.TEXT_OUTPUT for out in resp.outputs)
    return (1 if text else 0), _payload(resp)


@dataclass(frozen=True)
class Reader:
    figures: Figures
    # Streams of this profile must end with a response flagged triton_final_response; one that
    # ends without it was cut short (loadgate profile: not checked, other servers omit it).
    needs_final: bool


def reader(cls: TrafficClass) -> Reader:
    if cls.profile == "loadgate":
        return Reader(loadgate_figures if cls.token_count == "reported" else _per_message, False)
    if cls.token_count == "reported":
        return Reader(reported_figures, True)
    return Reader(response_counted, True)


def is_final(resp: pb.ModelInferResponse) -> bool:
    p = resp.parameters.get(sig.TRITON_FINAL)
    return p is not None and p.bool_param


# -- the start-up check ----------------------------------------------------------------------


def _names(items: Iterable, limit: int = 16) -> str:
    names = [t.name for t in items]
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


# An input only that backend's models declare: a loadgate-profile class aimed at one is refused.
_MARKER = {"vllm": sig.SAMPLING_PARAMETERS, "tensorrtllm": sig.MAX_TOKENS}


def check_model(
    cls: TrafficClass, meta: pb.ModelMetadataResponse, config: mc.ModelConfig | None
) -> None:
    """UserError (one line) unless the model declares what this class's profile sends and reads.
    `config` None: the target has no ModelConfig RPC (KServe servers other than Triton)."""
    where = f"class {cls.name}: model '{cls.model}'"
    declared = {t.name: t for t in meta.inputs}
    if cls.profile == "loadgate":
        for other, marker in _MARKER.items():
            if marker in declared:
                raise UserError(
                    f"{where} declares '{marker}', an input of the {other} backend, which profile "
                    f"loadgate does not send: set profile: {other}"
                )
    req = build_llm_request(cls)
    for t in req.inputs:  # names first: a missing input tells the most
        if t.name not in declared:
            raise UserError(
                f"{where} has no input '{t.name}' (profile {cls.profile}); its inputs: "
                f"{_names(meta.inputs)}"
            )
    for t in req.inputs:
        d = declared[t.name]
        if d.datatype != t.datatype or not tensors.shape_fits(t.shape, d.shape):
            raise UserError(
                f"{where} declares input '{t.name}' as {d.datatype} {list(d.shape)}; profile "
                f"{cls.profile} sends {t.datatype} {list(t.shape)}"
            )
    outputs = {t.name for t in meta.outputs}
    for o in req.outputs:
        if o.name not in outputs:
            hint = " (an older backend? set token_count: responses)"
            raise UserError(
                f"{where} has no output '{o.name}' (profile {cls.profile})"
                + (hint if o.name == sig.NUM_OUTPUT_TOKENS else "")
            )
    if config is None:
        return
    sent = {t.name for t in req.inputs}
    missing = [t.name for t in config.input if not t.optional and t.name not in sent]
    if missing:
        raise UserError(
            f"{where} requires input '{missing[0]}', which profile {cls.profile} does not send"
        )
    decoupled = config.model_transaction_policy.decoupled
    if cls.profile != "loadgate" and cls.kind == "llm_unary" and decoupled:
        raise UserError(
            f"{where} is decoupled, and Triton refuses ModelInfer for decoupled models "
            "(kind llm_unary): use kind llm_stream"
        )
    if cls.profile != "loadgate" and cls.kind == "llm_stream" and not decoupled:
        raise UserError(f"{where} is not decoupled: it cannot stream tokens (kind llm_stream)")


def _ask(call, request, timeout: float, md: tuple):
    """The response, or None when the RPC is not implemented or the model is unknown."""
    try:
        return call(request, timeout=timeout, metadata=md)
    except grpc.RpcError as e:
        if e.code() in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.NOT_FOUND):
            return None
        detail = " ".join((e.details() or "").split())[:120]
        raise UserError(f"cannot read model metadata: {e.code().name}: {detail}") from None


def check_classes(stub, scenario: Scenario, md: tuple = (), timeout: float = 5.0) -> None:
    """Read each LLM model's metadata and config once and check every LLM class against them.
    The loadgate profile is checked only where the target publishes a signature (it also drives
    KServe servers without these RPCs, and a misspelt model shows as NOT_FOUND rows); the backend
    profiles need the metadata to be sure of what they send."""
    seen: dict[str, tuple] = {}
    for cls in scenario.classes:
        if cls.kind == "cv":
            continue
        if cls.model not in seen:
            meta = _ask(stub.ModelMetadata, pb.ModelMetadataRequest(name=cls.model), timeout, md)
            cfg = _ask(stub.ModelConfig, pb.ModelConfigRequest(name=cls.model), timeout, md)
            seen[cls.model] = (meta, cfg.config if cfg is not None else None)
        meta, config = seen[cls.model]
        if meta is None or not meta.inputs:  # not served, no RPC, or no published signature
            if cls.profile == "loadgate":
                continue
            raise UserError(
                f"class {cls.name}: the target gives no signature for model '{cls.model}' (not "
                f"served, no ModelMetadata RPC, or no inputs declared); profile {cls.profile} "
                "needs it"
            )
        check_model(cls, meta, config)
