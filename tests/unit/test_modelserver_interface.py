"""Model server edges without processes: config (flags + YAML), request validation, HTTP, metrics,
the spawn command line."""

from __future__ import annotations

import sys

import pytest
from tritonclient.grpc import service_pb2 as pb

from loadgate.errors import UserError
from loadgate.modelserver import models
from loadgate.modelserver.__main__ import run
from loadgate.modelserver.config import parse_config
from loadgate.modelserver.http_server import respond, routes
from loadgate.modelserver.metrics import ModelStats, render
from loadgate.modelserver.poses import LlmRequest, Pose
from loadgate.modelserver.process import modelserver_cmd


def test_flags_override_yaml(tmp_path):
    f = tmp_path / "ms.yaml"
    f.write_text(
        "pod_name: from-file\ntime_scale: 0.5\nready_max_queue: 10\nready_resume_queue: 5\n"
    )
    cfg = parse_config(["--config", str(f), "--time-scale", "0.01"])
    assert (cfg.pod_name, cfg.time_scale, cfg.ready_max_queue) == ("from-file", 0.01, 10)
    assert cfg.latency().time_scale == 0.01 and cfg.grpc_port == 8001


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--time-scale", "0"], "--time-scale: Input should be greater than 0"),
        (["--ready-max-queue", "10"], "ready_resume_queue (25) must not exceed ready_max_queue"),
    ],
)
def test_bad_flags_are_one_line_user_errors(argv, expected):
    with pytest.raises(UserError, match=None) as err:
        parse_config(argv)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_bad_yaml_key_names_file_and_key(tmp_path):
    f = tmp_path / "ms.yaml"
    f.write_text("pod_nam: x\n")
    with pytest.raises(UserError, match=r"ms.yaml: pod_nam: unknown key"):
        parse_config(["--config", str(f)])


def test_main_exits_2_with_prefixed_message(tmp_path, capsys):
    assert run(["--config", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("loadgate-modelserver: error: ") and "no such file" in err
    with pytest.raises(SystemExit) as exit_:
        run(["--grpc-port", "notanumber"])
    assert exit_.value.code == 2


def test_zero_disables_readiness_rule():
    assert parse_config(["--ready-max-queue", "0"]).ready_max_queue == 0


def _req(model="cv", name="image", dtype="UINT8", shape=(1, 3, 224, 224), raw=None):
    r = pb.ModelInferRequest(model_name=model)
    r.inputs.add(name=name, datatype=dtype, shape=list(shape))
    if raw is not None:
        r.raw_input_contents.append(raw)
    return r


def test_cv_validation_like_triton():
    assert models.parse_cv(_req(shape=(3, 3, 224, 224)), max_batch=8) == 3
    assert models.parse_cv(_req(raw=bytes(3 * 224 * 224)), max_batch=8) == 1
    for bad in [
        _req(shape=(1, 3, 32, 32)),
        _req(shape=(9, 3, 224, 224)),
        _req(dtype="INT64"),
        _req(name="input0"),
        _req(raw=b"short"),
    ]:
        with pytest.raises(models.RequestError) as err:
            models.parse_cv(bad, max_batch=8)
        assert err.value.code == "INVALID_ARGUMENT"


def test_unknown_model_and_version_are_not_found():
    models.check_model("llm", "")
    models.check_model("cv", "1")
    for name, version in [("gpt", ""), ("cv", "7")]:
        with pytest.raises(models.RequestError) as err:
            models.check_model(name, version)
        assert err.value.code == "NOT_FOUND"


def test_loadgate_pose_reads_request_parameters():
    pose = Pose("loadgate", 8)
    r = pb.ModelInferRequest(model_name="llm")
    assert pose.parse(r, 50, 128) == LlmRequest(128, 50)
    r.parameters["max_tokens"].int64_param = 7
    r.parameters["prompt_tokens"].string_param = "300"
    assert pose.parse(r, 50, 128) == LlmRequest(300, 7)
    for bad in [0, 10**12]:
        r.parameters["max_tokens"].int64_param = bad
        with pytest.raises(models.RequestError):
            pose.parse(r, 50, 128)
    bad = _req(model="llm", name="text_input", dtype="FP32", shape=(1,))
    with pytest.raises(models.RequestError, match="BYTES"):
        pose.parse(bad, 50, 128)


def test_http_routes_and_readiness():
    ready = {"v": True}
    table = routes(lambda: "m 1\n", lambda: ready["v"])
    assert respond(table, b"GET /v2/health/ready HTTP/1.1\r\n").startswith(b"HTTP/1.1 200 OK")
    ready["v"] = False
    assert respond(table, b"GET /v2/health/ready HTTP/1.1\r\n").startswith(b"HTTP/1.1 503")
    assert respond(table, b"GET /metrics HTTP/1.1\r\n").endswith(b"\r\n\r\nm 1\n")
    assert respond(table, b"GET /nope HTTP/1.1\r\n").startswith(b"HTTP/1.1 404")
    assert respond(table, b"POST /metrics HTTP/1.1\r\n").startswith(b"HTTP/1.1 405")
    assert respond(table, b"\r\n").startswith(b"HTTP/1.1 405")


def test_metrics_render_triton_names_and_labels():
    stats = ModelStats(pending_request_count=51, queue_ns=1_234_567_000)
    stats.fail("CANCELED", 10)
    text = render({"llm": stats})
    assert 'nv_inference_pending_request_count{model="llm",version="1"} 51\n' in text
    assert 'nv_inference_queue_duration_us{model="llm",version="1"} 1234567\n' in text
    # Triton's failure counter carries a reason label (REJECTED, CANCELED, BACKEND, OTHER)
    assert 'nv_inference_request_failure{model="llm",reason="CANCELED",version="1"} 1\n' in text
    assert 'nv_inference_request_failure{model="llm",reason="BACKEND",version="1"} 0\n' in text
    assert "# TYPE loadgate_inference_executing_count gauge" in text
    for name in ["success", "failure"]:
        assert f"# TYPE nv_inference_request_{name} counter" in text


def test_modelserver_cmd_uses_this_interpreter():
    cmd = modelserver_cmd("p1", 9001, 9002, time_scale=0.05, token_chunk=None)
    assert cmd[:3] == [sys.executable, "-m", "loadgate.modelserver"]
    assert cmd[3:] == [
        "--pod-name",
        "p1",
        "--grpc-port",
        "9001",
        "--http-port",
        "9002",
        "--time-scale",
        "0.05",
    ]
    with pytest.raises(TypeError, match="timescale"):
        modelserver_cmd("p1", 1, 2, timescale=1)
