"""Request profiles without processes: the requests each builds, how each counts tokens, the
start-up check against a model's metadata and config, and the scenario fields."""

from __future__ import annotations

import json
import struct

import pytest
from pydantic import ValidationError
from tritonclient.grpc import model_config_pb2 as mc
from tritonclient.grpc import service_pb2 as pb

from loadgate import llm_signatures as sig
from loadgate import tensors
from loadgate.errors import UserError
from loadgate.modelserver.poses import Pose
from loadgate.traffic import profiles
from loadgate.traffic.scenario import Scenario, TrafficClass


def cls(profile="vllm", kind="llm_stream", **kw) -> TrafficClass:
    return TrafficClass(name="c", model="m", kind=kind, profile=profile, **kw)


def inputs(req: pb.ModelInferRequest) -> dict[str, tuple[str, list[int], list]]:
    return {
        t.name: (t.datatype, list(t.shape), tensors.decode(t.datatype, raw))
        for t, raw in zip(req.inputs, req.raw_input_contents, strict=True)
    }


def test_loadgate_request_is_unchanged():
    req = profiles.build_llm_request(cls("loadgate", max_tokens=2000, prompt_tokens=7))
    assert req.parameters["max_tokens"].int64_param == 2000
    assert req.parameters["prompt_tokens"].int64_param == 7
    (t,) = req.inputs
    assert (t.name, t.datatype, list(t.shape)) == ("text_input", "BYTES", [1])
    assert (
        req.raw_input_contents[0]
        == struct.pack("<I", 49) + b"Summarize the load test results in one paragraph."
    )


def test_vllm_request_as_the_backend_reads_it():
    c = cls("vllm", max_tokens=2000, prompt_tokens=5, sampling={"temperature": 0.5})
    got = inputs(profiles.build_llm_request(c))
    assert got["text_input"] == ("BYTES", [1], [b"the of and to in"])
    assert got["stream"] == ("BOOL", [1], [True])
    assert got["exclude_input_in_output"] == ("BOOL", [1], [True])
    assert got["return_num_output_tokens"] == ("BOOL", [1], [True])
    params = json.loads(got["sampling_parameters"][2][0])
    assert params == {"max_tokens": 2000, "min_tokens": 2000, "temperature": 0.5}
    unary_req = profiles.build_llm_request(cls("vllm", kind="llm_unary"))
    assert inputs(unary_req)["stream"][2] == [False]
    # streams ask for an empty final response where a backend flags the end alone (BLS)
    stream_req = profiles.build_llm_request(c)
    assert stream_req.parameters["triton_enable_empty_final_response"].bool_param
    assert "triton_enable_empty_final_response" not in unary_req.parameters


def test_tensorrtllm_request_has_the_batch_dimension_and_typed_tensors():
    c = cls("tensorrtllm", max_tokens=50, sampling={"temperature": 1, "top_k": 4, "seed": 9})
    req = profiles.build_llm_request(c)
    got = inputs(req)
    assert got["max_tokens"] == ("INT32", [1, 1], [50]) and got["min_tokens"][2] == [50]
    assert got["text_input"][:2] == ("BYTES", [1, 1])
    assert got["temperature"] == ("FP32", [1, 1], [1.0]) and got["seed"][0] == "UINT64"
    assert [o.name for o in req.outputs] == ["text_output", "num_output_tokens"]
    plain = profiles.build_llm_request(cls("tensorrtllm", token_count="responses"))
    assert "return_num_output_tokens" not in inputs(plain)
    assert [o.name for o in plain.outputs] == ["text_output"]


@pytest.mark.parametrize("profile", ["loadgate", "vllm", "tensorrtllm"])
def test_each_profile_fits_the_pose_of_its_backend(profile):
    # one signature table: what the client sends is what the server's pose declares and parses
    c = cls(profile, max_tokens=30, prompt_tokens=4)
    pose = Pose(profile, max_batch_size=8)
    meta = pose.metadata()
    profiles.check_model(c, meta, pose.config())
    parsed = pose.parse(profiles.build_llm_request(c), default_max=1, default_prompt=1)
    assert (parsed.max_tokens, parsed.prompt_tokens) == (30, 4)
    if profile != "loadgate":
        assert parsed.stream and parsed.report_tokens and parsed.echo == b""


def _response(outputs: dict[str, tuple[str, list]], final=False) -> pb.ModelInferResponse:
    r = pb.ModelInferResponse()
    for name, (dtype, values) in outputs.items():
        r.outputs.add(name=name, datatype=dtype, shape=[1, len(values)])
        r.raw_output_contents.append(tensors.encode(dtype, values))
    r.parameters["triton_final_response"].bool_param = final
    return r


def test_token_readers():
    text = ("BYTES", [b" tok tok tok"])
    # both backends: num_output_tokens = the tokens of this response (UINT32 / INT32)
    for dtype in ("UINT32", "INT32"):
        r = _response({"text_output": text, "num_output_tokens": (dtype, [3])})
        assert profiles.reported_figures(r) == (3, 4 + 12 + 4)
    assert profiles.reported_figures(_response({"text_output": text})) == (0, 16)
    # responses: one per response carrying text; an empty final response carries none
    assert profiles.response_counted(_response({"text_output": text})) == (1, 16)
    assert profiles.response_counted(_response({}, final=True)) == (0, 0)
    # loadgate: the tokens parameter, else one per message
    r = pb.ModelInferResponse(raw_output_contents=[b"abcd"])
    assert profiles.loadgate_figures(r) == (1, 4)
    r.parameters["tokens"].int64_param = 4
    assert profiles.loadgate_figures(r) == (4, 4)
    assert profiles.is_final(_response({}, final=True)) and not profiles.is_final(r)


def test_readers_per_class():
    assert profiles.reader(cls("loadgate")).figures is profiles.loadgate_figures
    assert not profiles.reader(cls("loadgate")).needs_final
    assert profiles.reader(cls("vllm")).figures is profiles.reported_figures
    assert (
        profiles.reader(cls("vllm", token_count="responses")).figures is profiles.response_counted
    )
    assert profiles.reader(cls("tensorrtllm")).needs_final


def _meta(*tensors_: tuple[str, str, list[int]], outputs=("text_output", "num_output_tokens")):
    T = pb.ModelMetadataResponse.TensorMetadata
    return pb.ModelMetadataResponse(
        name="m",
        inputs=[T(name=n, datatype=d, shape=s) for n, d, s in tensors_],
        outputs=[T(name=n, datatype="BYTES", shape=[-1]) for n in outputs],
    )


VLLM_INPUTS = [
    ("text_input", "BYTES", [1]),
    ("stream", "BOOL", [1]),
    ("sampling_parameters", "BYTES", [1]),
    ("exclude_input_in_output", "BOOL", [1]),
    ("return_num_output_tokens", "BOOL", [1]),
]


def test_check_refuses_in_one_line_what_the_model_does_not_declare():
    def refusal(c, meta, config=None) -> str:
        with pytest.raises(UserError) as err:
            profiles.check_model(c, meta, config)
        assert "\n" not in str(err.value)
        return str(err.value)

    ensemble = Pose("tensorrtllm", 8)
    msg = refusal(cls("vllm"), ensemble.metadata())
    assert msg.startswith("class c: model 'm' has no input 'sampling_parameters' (profile vllm)")
    assert ", ... (36 in all)" in msg  # a long list is cut
    assert "set profile: vllm" in refusal(cls("loadgate"), _meta(*VLLM_INPUTS))
    # an older vLLM backend: no token count output
    old = _meta(*VLLM_INPUTS[:4], outputs=("text_output",))
    assert "has no input 'return_num_output_tokens'" in refusal(cls("vllm"), old)
    old = _meta(*VLLM_INPUTS, outputs=("text_output",))
    assert "set token_count: responses" in refusal(cls("vllm"), old)
    profiles.check_model(cls("vllm", token_count="responses"), _meta(*VLLM_INPUTS[:4]), None)
    wrong = _meta(("text_input", "BYTES", [-1, 1]), *VLLM_INPUTS[1:])
    assert "declares input 'text_input' as BYTES [-1, 1]; profile vllm sends BYTES [1]" in refusal(
        cls("vllm"), wrong
    )
    # with a config: required inputs, decoupled policy
    config = Pose("vllm", 0).config()
    config.input.add(name="lora_name", data_type=mc.TYPE_STRING, dims=[1])
    assert "requires input 'lora_name'" in refusal(cls("vllm"), Pose("vllm", 0).metadata(), config)
    vllm = Pose("vllm", 0)
    assert "use kind llm_stream" in refusal(
        cls("vllm", kind="llm_unary"), vllm.metadata(), vllm.config()
    )
    not_decoupled = vllm.config()
    not_decoupled.model_transaction_policy.decoupled = False
    profiles.check_model(cls("vllm", kind="llm_unary"), vllm.metadata(), not_decoupled)
    assert "cannot stream" in refusal(cls("vllm"), vllm.metadata(), not_decoupled)


class _Stub:
    """ModelMetadata / ModelConfig answers per model name (a missing one: NOT_FOUND)."""

    def __init__(self, models: dict) -> None:
        self.models, self.asked = models, []

    def _rpc(self, kind):
        import grpc

        class NotFound(grpc.RpcError):
            def code(self):
                return grpc.StatusCode.NOT_FOUND

            def details(self):
                return "unknown model"

        def call(request, timeout, metadata):
            self.asked.append((kind, request.name))
            if request.name not in self.models:
                raise NotFound()
            pose = self.models[request.name]
            return (
                pose.metadata() if kind == "meta" else pb.ModelConfigResponse(config=pose.config())
            )

        return call

    @property
    def ModelMetadata(self):  # noqa: N802 - the stub's method name
        return self._rpc("meta")

    @property
    def ModelConfig(self):  # noqa: N802
        return self._rpc("config")


def test_check_classes_asks_once_per_model_and_lets_loadgate_through_unknown_models():
    sc = Scenario.model_validate(
        {
            "name": "s",
            "classes": [
                {"name": "a", "model": "m", "kind": "llm_stream", "profile": "vllm"},
                {
                    "name": "b",
                    "model": "m",
                    "kind": "llm_stream",
                    "profile": "vllm",
                    "max_tokens": 9,
                },
                {"name": "typo", "model": "nope", "kind": "llm_stream"},
                {"name": "cv", "model": "cv", "kind": "cv"},
            ],
            "phases": [{"name": "p", "duration_s": 1, "rate": 1}],
        }
    )
    stub = _Stub({"m": Pose("vllm", 0)})
    profiles.check_classes(stub, sc)
    assert stub.asked == [("meta", "m"), ("config", "m"), ("meta", "nope"), ("config", "nope")]
    with pytest.raises(UserError, match="no signature for model 'nope'.*profile vllm needs it"):
        profiles.check_classes(stub, sc.with_llm_profile("vllm"))


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"kind": "cv", "profile": "vllm"}, "LLM classes only"),
        ({"profile": "loadgate", "sampling": {"temperature": 1}}, "sends no sampling"),
        ({"profile": "vllm", "prompt_tokens": 0}, "prompt_tokens >= 1"),
        ({"kind": "llm_unary", "token_count": "responses"}, "not for llm_unary"),
        ({"profile": "tensorrtllm", "sampling": {"beam_width": 2}}, "not a TensorRT-LLM input"),
        ({"profile": "tensorrtllm", "sampling": {"top_k": 0.5}}, "INT32 input needs a number"),
        (
            {"profile": "tensorrtllm", "sampling": {"temperature": True}},
            "FP32 input needs a number",
        ),
        ({"profile": "triton"}, "Input should be 'loadgate', 'vllm' or 'tensorrtllm'"),
    ],
)
def test_scenario_refuses_settings_a_profile_cannot_send(fields, words):
    with pytest.raises(ValidationError, match=words.replace("(", r"\(")):
        TrafficClass.model_validate({"name": "c", "model": "m", "kind": "llm_stream", **fields})


def test_with_llm_profile_moves_only_llm_classes():
    sc = Scenario.model_validate(
        {
            "name": "s",
            "classes": [
                {"name": "l", "model": "llm", "kind": "llm_stream"},
                {"name": "cv", "model": "cv", "kind": "cv"},
            ],
            "phases": [{"name": "p", "duration_s": 1, "rate": 1}],
        }
    )
    moved = sc.with_llm_profile("tensorrtllm")
    assert [c.profile for c in moved.classes] == ["tensorrtllm", "loadgate"]
    assert sc.classes[0].profile == "loadgate"  # a copy
    assert sig.TRTLLM_SAMPLING and all(
        sig.TENSORRTLLM.input(n).optional for n in sig.TRTLLM_SAMPLING
    )
