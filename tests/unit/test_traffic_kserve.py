"""Requests, response figures, served_by, metadata from the environment, status names."""

import grpc
import pytest

from loadgate.errors import UserError
from loadgate.traffic import kserve
from loadgate.traffic.scenario import Client, TrafficClass


def test_llm_request_carries_token_parameters():
    req = kserve.build_request(
        TrafficClass(name="l", model="llm", kind="llm_stream", max_tokens=2000, prompt_tokens=7)
    )
    assert req.model_name == "llm"
    assert req.parameters["max_tokens"].int64_param == 2000
    assert req.parameters["prompt_tokens"].int64_param == 7
    assert req.inputs[0].name == "text_input" and req.inputs[0].datatype == "BYTES"


@pytest.mark.parametrize("dtype,size", [("UINT8", 150528), ("FP32", 602112)])
def test_cv_request_is_one_image(dtype, size):
    req = kserve.build_request(TrafficClass(name="c", model="cv", kind="cv", image_dtype=dtype))
    assert list(req.inputs[0].shape) == [1, 3, 224, 224] and req.inputs[0].datatype == dtype
    assert len(req.raw_input_contents[0]) == size


def test_served_by_header_with_fallback():
    md = {"x-pod-name": "pod-1"}
    assert kserve.served_by(md, "x-upstream-host", "x-pod-name") == "pod-1"
    md["x-upstream-host"] = "10.0.0.2:8001"
    assert kserve.served_by(md, "x-upstream-host", "x-pod-name") == "10.0.0.2:8001"
    assert kserve.served_by(None, "a", "b") == ""


def test_metadata_values_come_from_the_environment_only():
    client = Client(metadata_env={"Authorization": "LG_TOKEN"})
    assert kserve.call_metadata(client, {"LG_TOKEN": "Bearer s3cret"}) == (
        ("authorization", "Bearer s3cret"),
    )
    assert "s3cret" not in client.model_dump_json()
    with pytest.raises(UserError, match="LG_TOKEN is not set"):
        kserve.call_metadata(client, {})


def test_status_names():
    class E(grpc.RpcError):
        def code(self):
            return grpc.StatusCode.DEADLINE_EXCEEDED

    assert kserve.status_name(E()) == "DEADLINE_EXCEEDED"
    assert kserve.status_name(grpc.FutureCancelledError()) == "CANCELLED"
    assert kserve.status_name(ValueError()) == "UNKNOWN"


def test_error_text_is_the_details_on_one_capped_line():
    class E(grpc.RpcError):
        def details(self):
            return "upstream connect error or disconnect/reset before headers.\n reset " + "x" * 300

    text = kserve.error_text(E())
    assert text.startswith("upstream connect error or disconnect/reset before headers. reset x")
    assert len(text) == kserve.ERROR_CHARS and text.endswith("...") and "\n" not in text
    assert kserve.error_text(grpc.FutureCancelledError()) == ""
    assert kserve.short_error("  bad\tinput  ") == "bad input" and kserve.short_error(None) == ""


def test_tls_needs_cert_and_key_together():
    with pytest.raises(ValueError, match="together"):
        Client.model_validate({"tls": {"cert": "c.pem"}})
