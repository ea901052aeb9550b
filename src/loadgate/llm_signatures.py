"""The model signatures of Triton's LLM backends, and of loadgate-modelserver's own `llm`.

One place for the tensor names, datatypes and shapes that the traffic profiles
(`loadgate.traffic.profiles`) send and read, and that the model server's poses
(`loadgate.modelserver.poses`) declare and validate.

Read from (not copied): triton-inference-server/vllm_backend `src/model.py`
(`_auto_complete_inputs_and_outputs`, max_batch_size 0, decoupled; 2026-01) and
`docs/additional_outputs.md`; NVIDIA/TensorRT-LLM
`triton_backend/all_models/inflight_batcher_llm/ensemble/config.pbtxt` (the `ensemble` model that
tensorrtllm_backend's guides deploy; `tensorrt_llm_bls` takes the same text inputs) and its
backend's `model_instance_state.cc` (`num_output_tokens` = tokens of that response, shape [1, 1]);
GenAI-Perf's `vllm_converter.py` / `tensorrtllm_converter.py` (the inputs a tool sends).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Profile = Literal["loadgate", "vllm", "tensorrtllm"]
PROFILES: tuple[str, ...] = ("loadgate", "vllm", "tensorrtllm")

# Tensor and parameter names shared by more than one side.
TEXT_INPUT = "text_input"
TEXT_OUTPUT = "text_output"
STREAM = "stream"
SAMPLING_PARAMETERS = "sampling_parameters"  # vLLM: one JSON string
MAX_TOKENS = "max_tokens"  # TRT-LLM: INT32 tensor; vLLM: sampling key; loadgate: request parameter
MIN_TOKENS = "min_tokens"
EXCLUDE_INPUT = "exclude_input_in_output"
RETURN_NUM_INPUT_TOKENS = "return_num_input_tokens"
RETURN_NUM_OUTPUT_TOKENS = "return_num_output_tokens"
NUM_INPUT_TOKENS = "num_input_tokens"
NUM_OUTPUT_TOKENS = "num_output_tokens"  # both backends: tokens in this response (a delta)
RETURN_FINISH_REASON = "return_finish_reason"
FINISH_REASON = "finish_reason"
PROMPT_TOKENS = "prompt_tokens"  # loadgate request parameter
TOKENS = "tokens"  # loadgate response parameter: tokens in this message
TRITON_FINAL = "triton_final_response"  # Triton sets it on every decoupled stream response
# Request parameter: when a backend flags the end without a response (tensorrt_llm_bls sends the
# final flag alone), Triton then sends an empty response with triton_final_response true.
TRITON_EMPTY_FINAL = "triton_enable_empty_final_response"

# KServe v2 datatype -> model_config DataType name
CONFIG_TYPE = {
    "BYTES": "TYPE_STRING",
    "BOOL": "TYPE_BOOL",
    "UINT8": "TYPE_UINT8",
    "INT32": "TYPE_INT32",
    "UINT32": "TYPE_UINT32",
    "INT64": "TYPE_INT64",
    "UINT64": "TYPE_UINT64",
    "FP16": "TYPE_FP16",
    "FP32": "TYPE_FP32",
}


@dataclass(frozen=True)
class Tensor:
    name: str
    datatype: str  # KServe v2 name (BYTES for Triton's TYPE_STRING)
    dims: tuple[int, ...]  # as in config.pbtxt: without the batch dimension, -1 = any size
    optional: bool = False


@dataclass(frozen=True)
class Signature:
    profile: str
    backend: str  # ModelConfig.backend ("" for an ensemble)
    platform: str  # ModelConfig.platform
    batched: bool  # max_batch_size > 0: every tensor carries a leading batch dimension
    decoupled: bool
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]

    def input(self, name: str) -> Tensor:
        return next(t for t in self.inputs if t.name == name)

    def output(self, name: str) -> Tensor:
        return next(t for t in self.outputs if t.name == name)

    def shape(self, t: Tensor) -> list[int]:
        """The shape ModelMetadata reports for a tensor (-1 for the batch dimension)."""
        return [-1, *t.dims] if self.batched else list(t.dims)

    def request_shape(self, t: Tensor) -> list[int]:
        """The shape of one request for one prompt: batch 1, and 1 for variable dimensions."""
        dims = [1 if d < 0 else d for d in t.dims]
        return [1, *dims] if self.batched else dims


def _t(name: str, datatype: str, dims: tuple[int, ...] = (1,), optional: bool = True) -> Tensor:
    return Tensor(name, datatype, dims, optional)


LOADGATE = Signature(
    profile="loadgate",
    backend="loadgate_simulated",
    platform="",
    batched=False,
    decoupled=True,
    # text_input is accepted but not read; max_tokens and prompt_tokens are request parameters
    inputs=(_t(TEXT_INPUT, "BYTES"),),
    outputs=(_t(TEXT_OUTPUT, "BYTES", optional=False),),
)

VLLM = Signature(
    profile="vllm",
    backend="vllm",
    platform="",
    batched=False,  # the backend sets max_batch_size 0
    decoupled=True,  # required by the backend
    inputs=(
        _t(TEXT_INPUT, "BYTES", optional=False),
        _t("image", "BYTES", (-1,)),
        _t(STREAM, "BOOL"),
        _t(SAMPLING_PARAMETERS, "BYTES"),
        _t(EXCLUDE_INPUT, "BOOL"),
        _t(RETURN_FINISH_REASON, "BOOL"),
        _t("return_cumulative_logprob", "BOOL"),
        _t("return_logprobs", "BOOL"),
        _t(RETURN_NUM_INPUT_TOKENS, "BOOL"),
        _t(RETURN_NUM_OUTPUT_TOKENS, "BOOL"),
        _t("embedding_request", "BYTES"),  # reserved for Triton's OpenAI frontend
    ),
    outputs=(
        _t(TEXT_OUTPUT, "BYTES", (-1,), False),
        _t(FINISH_REASON, "BYTES", (-1,), False),
        _t("cumulative_logprob", "FP32", (-1,), False),
        _t("logprobs", "BYTES", (-1,), False),
        _t(NUM_INPUT_TOKENS, "UINT32", (1,), False),
        _t(NUM_OUTPUT_TOKENS, "UINT32", (-1,), False),
    ),
)

TENSORRTLLM = Signature(
    profile="tensorrtllm",
    backend="",
    platform="ensemble",
    batched=True,  # max_batch_size: ${triton_max_batch_size}
    decoupled=True,  # an ensemble over a decoupled tensorrt_llm step (decoupled_mode: true)
    inputs=(
        _t(TEXT_INPUT, "BYTES", optional=False),
        _t("decoder_text_input", "BYTES"),
        _t(MAX_TOKENS, "INT32", optional=False),
        _t("num_return_sequences", "INT32"),
        _t("bad_words", "BYTES", (-1,)),
        _t("stop_words", "BYTES", (-1,)),
        _t(EXCLUDE_INPUT, "BOOL"),
        _t("end_id", "INT32"),
        _t("pad_id", "INT32"),
        _t("top_k", "INT32"),
        _t("top_p", "FP32"),
        _t("temperature", "FP32"),
        _t("length_penalty", "FP32"),
        _t("repetition_penalty", "FP32"),
        _t(MIN_TOKENS, "INT32"),
        _t("presence_penalty", "FP32"),
        _t("frequency_penalty", "FP32"),
        _t("seed", "UINT64"),
        _t("return_log_probs", "BOOL"),
        _t("return_context_logits", "BOOL"),
        _t("return_generation_logits", "BOOL"),
        _t("return_perf_metrics", "BOOL"),
        _t(RETURN_NUM_INPUT_TOKENS, "BOOL"),
        _t(RETURN_NUM_OUTPUT_TOKENS, "BOOL"),
        _t("beam_width", "INT32"),
        _t(STREAM, "BOOL"),
        _t("prompt_embedding_table", "FP16", (-1, -1)),
        _t("prompt_table_extra_id", "UINT64"),
        _t("prompt_vocab_size", "INT32"),
        _t("embedding_bias_words", "BYTES", (-1,)),
        _t("embedding_bias_weights", "FP32", (-1,)),
        _t("lora_task_id", "UINT64"),
        _t("lora_weights", "FP16", (-1, -1)),
        _t("lora_config", "INT32", (-1, 3)),
        _t("guided_decoding_guide_type", "BYTES"),
        _t("guided_decoding_guide", "BYTES"),
    ),
    # The published list names kv_cache_alloc_total_blocks twice; declared once here.
    outputs=tuple(
        _t(name, dtype, dims, False)
        for name, dtype, dims in (
            (TEXT_OUTPUT, "BYTES", (-1,)),
            ("cum_log_probs", "FP32", (-1,)),
            ("output_log_probs", "FP32", (-1, -1)),
            ("context_logits", "FP32", (-1, -1)),  # ${logits_datatype}
            ("generation_logits", "FP32", (-1, -1, -1)),
            ("batch_index", "INT32", (1,)),
            ("sequence_index", "INT32", (1,)),
            ("kv_cache_alloc_new_blocks", "INT32", (1,)),
            ("kv_cache_reused_blocks", "INT32", (1,)),
            ("kv_cache_alloc_total_blocks", "INT32", (1,)),
            ("arrival_time_ns", "INT64", (1,)),
            ("first_scheduled_time_ns", "INT64", (1,)),
            ("first_token_time_ns", "INT64", (1,)),
            ("last_token_time_ns", "INT64", (1,)),
            ("acceptance_rate", "FP32", (1,)),
            ("total_accepted_draft_tokens", "INT32", (1,)),
            ("total_draft_tokens", "INT32", (1,)),
            (NUM_INPUT_TOKENS, "INT32", (1,)),
            (NUM_OUTPUT_TOKENS, "INT32", (1,)),
        )
    ),
)

SIGNATURES: dict[str, Signature] = {s.profile: s for s in (LOADGATE, VLLM, TENSORRTLLM)}

# What a scenario's `sampling:` may set as TRT-LLM input tensors: the sampling knobs of the
# ensemble (the profile sets text_input, max_tokens, stream and the switches itself; beam_width and
# num_return_sequences would change what a response carries, so they are not offered).
TRTLLM_SAMPLING = (
    "temperature", "top_k", "top_p", "min_tokens", "seed", "repetition_penalty",
    "presence_penalty", "frequency_penalty", "length_penalty", "end_id", "pad_id",
)  # fmt: skip
