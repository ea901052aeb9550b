"""The llm model's poses without processes: declared signature against the published tables,
request validation the way Triton and the backends answer, responses; the statistics message."""

from __future__ import annotations

import json

import pytest
from tritonclient.grpc import model_config_pb2 as mc
from tritonclient.grpc import service_pb2 as pb

from loadgate import llm_signatures as sig
from loadgate import tensors
from loadgate.modelserver.metrics import ModelStats
from loadgate.modelserver.models import RequestError
from loadgate.modelserver.poses import Pose
from loadgate.modelserver.statistics import model_statistics


def request(batched: bool, **inputs: tuple[str, list]) -> pb.ModelInferRequest:
    r = pb.ModelInferRequest(model_name="llm")
    for name, (dtype, values) in inputs.items():
        shape = [1, len(values)] if batched else [len(values)]
        r.inputs.add(name=name, datatype=dtype, shape=shape)
        r.raw_input_contents.append(tensors.encode(dtype, values))
    return r


def vllm(**extra) -> pb.ModelInferRequest:
    base = {"text_input": ("BYTES", [b"a b c d"]), "stream": ("BOOL", [True])}
    return request(False, **{**base, **extra})


def trtllm(**extra) -> pb.ModelInferRequest:
    base = {"text_input": ("BYTES", [b"a b c"]), "max_tokens": ("INT32", [20])}
    return request(True, **{**base, **extra})


def refused(pose: Pose, req: pb.ModelInferRequest) -> str:
    with pytest.raises(RequestError) as err:
        pose.parse(req, 50, 128)
    assert err.value.code == "INVALID_ARGUMENT"
    return str(err.value)


@pytest.mark.parametrize("profile", ["vllm", "tensorrtllm"])
def test_declared_signature_is_the_published_one(profile):
    s = sig.SIGNATURES[profile]
    pose = Pose(profile, max_batch_size=16)
    cfg, meta = pose.config(), pose.metadata()
    assert cfg.max_batch_size == (16 if s.batched else 0)
    assert cfg.model_transaction_policy.decoupled and (cfg.backend, cfg.platform) == (
        s.backend,
        s.platform,
    )
    assert [(t.name, t.optional, list(t.dims)) for t in cfg.input] == [
        (t.name, t.optional, list(t.dims)) for t in s.inputs
    ]
    assert mc.DataType.Name(cfg.input[0].data_type) == "TYPE_STRING"
    batch = [-1] if s.batched else []
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [
        (t.name, t.datatype, batch + list(t.dims)) for t in s.inputs
    ]
    assert meta.platform == (s.platform or s.backend)


def test_vllm_reads_sampling_parameters_and_its_defaults():
    pose = Pose("vllm", 8)
    params = ("BYTES", [json.dumps({"max_tokens": "300", "temperature": 0}).encode()])
    llm = pose.parse(
        vllm(sampling_parameters=params, return_num_output_tokens=("BOOL", [True])), 50, 1
    )
    assert (llm.max_tokens, llm.prompt_tokens, llm.stream, llm.report_tokens) == (
        300,
        4,
        True,
        True,
    )
    assert pose.parse(vllm(), 50, 1).max_tokens == 50  # no sampling_parameters: the default
    # not streaming: the backend echoes the prompt unless told not to
    assert pose.parse(vllm(stream=("BOOL", [False])), 50, 1).echo == b"a b c d"
    quiet = vllm(stream=("BOOL", [False]), exclude_input_in_output=("BOOL", [True]))
    assert pose.parse(quiet, 50, 1).echo == b""
    assert "exclude_input_in_output` = False is not allowed" in refused(
        pose, vllm(exclude_input_in_output=("BOOL", [False]))
    )
    assert "JSON object" in refused(pose, vllm(sampling_parameters=("BYTES", [b"{oops"])))
    assert "not simulated" in refused(pose, vllm(return_logprobs=("BOOL", [True])))


def test_tensorrtllm_validates_like_triton_with_a_batch_dimension():
    pose = Pose("tensorrtllm", 8)
    llm = pose.parse(trtllm(stream=("BOOL", [True]), temperature=("FP32", [0.7])), 50, 1)
    assert (llm.max_tokens, llm.prompt_tokens, llm.stream) == (20, 3, True)
    assert pose.parse(trtllm(), 50, 1).echo == b"a b c"  # not streaming, input not excluded
    assert "missing required input(s) ['max_tokens']" in refused(
        pose, request(True, text_input=("BYTES", [b"x"]))
    )
    no_batch = request(False, text_input=("BYTES", [b"x"]), max_tokens=("INT32", [5]))
    assert "requires a batch dimension" in refused(pose, no_batch)
    assert "expects 'INT32'" in refused(pose, trtllm(max_tokens=("INT64", [5])))
    assert "unexpected inference input 'prompt'" in refused(pose, trtllm(prompt=("BYTES", [b"x"])))
    assert "max_tokens must be 1..100000" in refused(pose, trtllm(max_tokens=("INT32", [0])))
    assert "'beam_width' other than 1" in refused(pose, trtllm(beam_width=("INT32", [4])))
    short = trtllm()
    short.raw_input_contents[1] = b"\x01\x00"  # half an INT32
    assert "max_tokens" in refused(pose, short)
    two = request(True, text_input=("BYTES", [b"x"]), max_tokens=("INT32", [5]))
    two.inputs[0].shape[:] = [2, 1]
    assert "batch 2" in refused(pose, two)
    unknown_out = trtllm()
    unknown_out.outputs.add(name="logits")
    assert "unexpected inference output 'logits'" in refused(pose, unknown_out)


def test_responses_carry_what_was_asked_for():
    pose = Pose("tensorrtllm", 8)
    req = trtllm(return_num_output_tokens=("BOOL", [True]), stream=("BOOL", [True]))
    llm = pose.parse(req, 50, 1)
    r = pose.response("id-1", llm, tokens=3, final=False, first=True)
    out = {
        o.name: (o.datatype, list(o.shape), tensors.decode(o.datatype, raw))
        for o, raw in zip(r.outputs, r.raw_output_contents, strict=True)
    }
    assert out == {
        "text_output": ("BYTES", [1, 1], [b" tok tok tok"]),
        "num_output_tokens": ("INT32", [1, 1], [3]),
    }
    assert r.id == "id-1" and not r.parameters["triton_final_response"].bool_param
    assert "tokens" not in r.parameters  # loadgate's own parameter is not part of the pose
    req.outputs.add(name="text_output")  # only requested outputs come back, as in Triton
    only_text = pose.response("x", pose.parse(req, 50, 1), 3, True, True)
    assert [o.name for o in only_text.outputs] == ["text_output"]
    vllm_pose = Pose("vllm", 8)
    r = vllm_pose.response(
        "x", vllm_pose.parse(vllm(return_num_output_tokens=("BOOL", [True])), 5, 1), 2, True, True
    )
    assert [(o.name, o.datatype, list(o.shape)) for o in r.outputs] == [
        ("text_output", "BYTES", [1]),
        ("num_output_tokens", "UINT32", [1]),
    ]
    assert r.parameters["triton_final_response"].bool_param


def test_model_statistics_message_mirrors_the_counters():
    s = ModelStats()
    s.success(items=4, request_ns=900, queue_ns=100, compute_ns=700)
    s.success(items=1, request_ns=100, queue_ns=10, compute_ns=50)
    s.fail("CANCELED", request_ns=40)
    s.executed(4, 700)
    s.executed(1, 50)
    s.last_inference_ms = 123
    m = model_statistics("cv", "1", s)
    i = m.inference_stats
    assert (m.inference_count, m.execution_count, m.last_inference) == (5, 2, 123)
    assert (i.success.count, i.success.ns, i.fail.count, i.fail.ns) == (2, 1000, 1, 40)
    assert (i.queue.count, i.queue.ns, i.compute_infer.ns) == (2, 110, 750)
    assert [(b.batch_size, b.compute_infer.count, b.compute_infer.ns) for b in m.batch_stats] == [
        (1, 1, 50),
        (4, 1, 700),
    ]
