"""The `llm` model as each backend presents it (`--llm-profile`): signature, validation, responses.

- `loadgate`: the simulated server's own dialect (request parameters `max_tokens`,
  `prompt_tokens`; a `tokens` response parameter per message).
- `vllm`, `tensorrtllm`: the published signatures of Triton's vLLM backend and of the
  TensorRT-LLM `ensemble` (loadgate.llm_signatures): the same inputs, datatypes, shapes, decoupled
  policy and outputs, so a client built for the real backend talks to this one unchanged.

Only the prompt's length matters to the simulation: prompt tokens are counted as the prompt's
whitespace-separated words. Declared inputs the simulation has no use for (sampling knobs, stop
words, LoRA...) are accepted and ignored; those asking for outputs it does not simulate
(log-probs, logits, beams) are refused with INVALID_ARGUMENT. Pure functions; errors are values.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from tritonclient.grpc import model_config_pb2 as mc
from tritonclient.grpc import service_pb2 as pb

from loadgate import llm_signatures as sig
from loadgate import tensors
from loadgate.modelserver.models import LLM, MAX_TOKENS, VERSION, RequestError

_TEXT = b" tok"  # the simulated text of one token
# Inputs whose true value asks for something the simulation does not produce.
_NOT_SIMULATED = {
    "vllm": ("return_logprobs", "return_cumulative_logprob", "embedding_request"),
    "tensorrtllm": (
        "return_log_probs",
        "return_context_logits",
        "return_generation_logits",
        "return_perf_metrics",
    ),
}
_ONE_ONLY = ("beam_width", "num_return_sequences")  # more than 1 changes what a response holds


@dataclass(frozen=True)
class LlmRequest:
    prompt_tokens: int
    max_tokens: int
    stream: bool = True  # False: one response when generation is done
    report_tokens: bool = False  # num_output_tokens on every response
    report_prompt: bool = False  # num_input_tokens on every response
    finish_reason: bool = False
    echo: bytes = b""  # the prompt, when the backend puts it before the generated text
    outputs: frozenset[str] | None = None  # the outputs the client asked for (None: all)

    def wants(self, name: str) -> bool:
        return self.outputs is None or name in self.outputs


class Pose:
    def __init__(self, profile: str, max_batch_size: int) -> None:
        self.profile = profile
        self.sig = sig.SIGNATURES[profile]
        self.max_batch = max_batch_size if self.sig.batched else 0
        # Triton refuses ModelInfer for a decoupled model; loadgate's own llm answers it.
        self.unary_ok = profile == "loadgate"

    # -- what the model declares -------------------------------------------------------------
    def metadata(self) -> pb.ModelMetadataResponse:
        T = pb.ModelMetadataResponse.TensorMetadata
        s = self.sig
        return pb.ModelMetadataResponse(
            name=LLM,
            versions=[VERSION],
            platform=s.platform or s.backend,  # Triton reports the backend when no platform
            inputs=[T(name=t.name, datatype=t.datatype, shape=s.shape(t)) for t in s.inputs],
            outputs=[T(name=t.name, datatype=t.datatype, shape=s.shape(t)) for t in s.outputs],
        )

    def config(self) -> mc.ModelConfig:
        def dt(t: sig.Tensor) -> int:
            return mc.DataType.Value(sig.CONFIG_TYPE[t.datatype])

        s = self.sig
        return mc.ModelConfig(
            name=LLM,
            platform=s.platform,
            backend=s.backend,
            max_batch_size=self.max_batch,
            model_transaction_policy=mc.ModelTransactionPolicy(decoupled=s.decoupled),
            input=[
                mc.ModelInput(name=t.name, data_type=dt(t), dims=list(t.dims), optional=t.optional)
                for t in s.inputs
            ],
            output=[
                mc.ModelOutput(name=t.name, data_type=dt(t), dims=list(t.dims)) for t in s.outputs
            ],
        )

    # -- requests ----------------------------------------------------------------------------
    def parse(self, req: pb.ModelInferRequest, default_max: int, default_prompt: int) -> LlmRequest:
        if self.profile == "loadgate":
            return _parse_loadgate(req, default_max, default_prompt)
        values = self._inputs(req)
        for name in _NOT_SIMULATED[self.profile]:
            if values.get(name, [False])[0]:
                raise _invalid(f"'{name}' is not simulated by loadgate-modelserver")
        for name in _ONE_ONLY:
            if values.get(name, [1])[0] != 1:
                raise _invalid(f"'{name}' other than 1 is not simulated by loadgate-modelserver")
        declared = {t.name for t in self.sig.outputs}
        for o in req.outputs:
            if o.name not in declared:
                raise _invalid(f"unexpected inference output '{o.name}' for model '{LLM}'")
        prompt = values[sig.TEXT_INPUT][0]
        stream = bool(values.get(sig.STREAM, [False])[0])
        if self.profile == "vllm":
            max_tokens = _sampling_max_tokens(values, default_max)
            exclude = values.get(sig.EXCLUDE_INPUT)
            echo = (not exclude[0]) if exclude else not stream  # the vLLM backend's defaults
            if echo and stream:
                raise _invalid("When streaming, `exclude_input_in_output` = False is not allowed.")
        else:
            max_tokens = values[sig.MAX_TOKENS][0]
            echo = not stream and not values.get(sig.EXCLUDE_INPUT, [False])[0]
        if not 1 <= max_tokens <= MAX_TOKENS:
            raise _invalid(f"max_tokens must be 1..{MAX_TOKENS}, got {max_tokens}")
        prompt_tokens = len(prompt.split())
        if prompt_tokens > MAX_TOKENS:
            raise _invalid(f"the prompt must have at most {MAX_TOKENS} words")
        return LlmRequest(
            prompt_tokens=prompt_tokens,
            max_tokens=max_tokens,
            stream=stream,
            report_tokens=bool(values.get(sig.RETURN_NUM_OUTPUT_TOKENS, [False])[0]),
            report_prompt=bool(values.get(sig.RETURN_NUM_INPUT_TOKENS, [False])[0]),
            finish_reason=bool(values.get(sig.RETURN_FINISH_REASON, [False])[0]),
            echo=prompt if echo else b"",
            outputs=frozenset(o.name for o in req.outputs) or None,
        )

    def _inputs(self, req: pb.ModelInferRequest) -> dict[str, list]:
        """Each input's elements, validated the way Triton validates a request against the
        model config (names, datatypes, shapes with the batch dimension, byte sizes)."""
        declared = {t.name: t for t in self.sig.inputs}
        out: dict[str, list] = {}
        for i, t in enumerate(req.inputs):
            d = declared.get(t.name)
            if d is None:
                raise _invalid(f"unexpected inference input '{t.name}' for model '{LLM}'")
            if t.datatype != d.datatype:
                raise _invalid(
                    f"inference input '{t.name}' data-type is '{t.datatype}', but model "
                    f"'{LLM}' expects '{d.datatype}'"
                )
            self._check_shape(t, d)
            if i >= len(req.raw_input_contents):
                raise _invalid(f"input '{t.name}' has no data (send raw_input_contents)")
            try:
                values = tensors.decode(t.datatype, req.raw_input_contents[i])
            except ValueError as e:
                raise _invalid(f"input '{t.name}': {e}") from None
            if len(values) != math.prod(t.shape):
                raise _invalid(
                    f"input byte size mismatch for input '{t.name}' for model '{LLM}': "
                    f"{len(values)} elements for shape {list(t.shape)}"
                )
            out[t.name] = values
        missing = [t.name for t in self.sig.inputs if not t.optional and t.name not in out]
        if missing:
            raise _invalid(
                f"expected {len(self.sig.inputs)} inputs but got {len(req.inputs)} inputs for "
                f"model '{LLM}'. Got input(s) {list(out)}, but missing required input(s) "
                f"{missing}. Please provide all required input(s)."
            )
        return out

    def _check_shape(self, t: pb.ModelInferRequest.InferInputTensor, d: sig.Tensor) -> None:
        shape, want = list(t.shape), self.sig.shape(d)
        ok = tensors.shape_fits(shape, want)
        if ok and self.sig.batched and shape[0] != 1:
            raise _invalid(
                f"input '{t.name}': batch {shape[0]}; loadgate-modelserver simulates one prompt "
                "per request (batch 1)"
            )
        if not ok:
            note = (
                " NOTE: Setting a non-zero max_batch_size in the model config requires a batch "
                "dimension to be prepended to each input shape."
                if self.sig.batched
                else ""
            )
            raise _invalid(
                f"unexpected shape for input '{t.name}' for model '{LLM}'. Expected "
                f"{want}, got {shape}.{note}"
            )

    # -- responses ---------------------------------------------------------------------------
    def response(
        self, req_id: str, llm: LlmRequest, tokens: int, final: bool, first: bool
    ) -> pb.ModelInferResponse:
        """One response carrying `tokens` generated tokens (the stream's first one with the
        echoed prompt, if any). As in Triton, only requested outputs are returned; outputs the
        backend produces only on request (counts, finish reason) come when switched on, and
        outputs the simulation does not produce (log-probs, logits...) never come."""
        r = pb.ModelInferResponse(model_name=LLM, model_version=VERSION, id=req_id)
        if self.profile == "loadgate":
            self._add(r, sig.TEXT_OUTPUT, [_TEXT * tokens])
            r.parameters[sig.TOKENS].int64_param = tokens
            r.parameters[sig.TRITON_FINAL].bool_param = final
            return r
        if llm.wants(sig.TEXT_OUTPUT):
            self._add(r, sig.TEXT_OUTPUT, [(llm.echo if first else b"") + _TEXT * tokens])
        if llm.finish_reason and llm.wants(sig.FINISH_REASON):
            self._add(r, sig.FINISH_REASON, [b"length" if final else b"None"])
        if llm.report_prompt and llm.wants(sig.NUM_INPUT_TOKENS):
            self._add(r, sig.NUM_INPUT_TOKENS, [llm.prompt_tokens])
        if llm.report_tokens and llm.wants(sig.NUM_OUTPUT_TOKENS):
            self._add(r, sig.NUM_OUTPUT_TOKENS, [tokens])
        r.parameters[sig.TRITON_FINAL].bool_param = final  # set by Triton on stream responses
        return r

    def _add(self, r: pb.ModelInferResponse, name: str, values: list) -> None:
        t = self.sig.output(name)
        r.outputs.add(name=name, datatype=t.datatype, shape=self.sig.request_shape(t))
        r.raw_output_contents.append(tensors.encode(t.datatype, values))


def _invalid(message: str) -> RequestError:
    return RequestError("INVALID_ARGUMENT", message)


def _sampling_max_tokens(values: dict[str, list], default: int) -> int:
    raw = values.get(sig.SAMPLING_PARAMETERS)
    if not raw:
        return default
    try:
        params = json.loads(raw[0])
        value = params.get(sig.MAX_TOKENS, default) if isinstance(params, dict) else None
        return int(value)  # GenAI-Perf sends numbers as strings
    except (ValueError, TypeError):
        raise _invalid(
            "sampling_parameters: expected a JSON object with an integer max_tokens"
        ) from None


# -- loadgate's own dialect ------------------------------------------------------------------


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
        raise _invalid(f"parameter '{key}' must be a non-negative integer")
    return value


def _parse_loadgate(req: pb.ModelInferRequest, default_max: int, default_prompt: int) -> LlmRequest:
    for t in req.inputs:
        if t.name != sig.TEXT_INPUT:
            raise _invalid(f"unexpected inference input '{t.name}' for model '{LLM}'")
        if t.datatype != "BYTES":
            raise _invalid(
                f"inference input '{sig.TEXT_INPUT}' data-type is '{t.datatype}', but model "
                f"'{LLM}' expects 'BYTES'"
            )
        if math.prod(t.shape) != 1:
            raise _invalid(
                f"unexpected shape for input '{sig.TEXT_INPUT}' for model '{LLM}'. Expected [1], "
                f"got {list(t.shape)}"
            )
    max_tokens = _int_param(req, sig.MAX_TOKENS, default_max)
    if not 1 <= max_tokens <= MAX_TOKENS:
        raise _invalid(f"parameter 'max_tokens' must be 1..{MAX_TOKENS}")
    prompt_tokens = _int_param(req, sig.PROMPT_TOKENS, default_prompt)
    if prompt_tokens > MAX_TOKENS:
        raise _invalid(f"parameter 'prompt_tokens' must be <= {MAX_TOKENS}")
    return LlmRequest(prompt_tokens, max_tokens)
