"""The model server as a process, driven by the real tritonclient (protocol compatibility proved
with a client nobody here wrote) and by plain grpcio where headers matter."""

from __future__ import annotations

import queue
import re
import signal
import threading

import grpc
import numpy as np
import pytest
import tritonclient.grpc as tc
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc

from loadgate.modelserver.process import start_modelserver
from loadgate.procs import free_port, http_status, stop, wait_until

pytestmark = pytest.mark.integration


def image(shape=(1, 3, 224, 224), dtype="UINT8"):
    inp = tc.InferInput("image", list(shape), dtype)
    inp.set_data_from_numpy(np.zeros(shape, np.uint8 if dtype == "UINT8" else np.float32))
    return inp


def metric(http_url: str, name: str, model: str, reason: str = "") -> float:
    import urllib.request

    text = urllib.request.urlopen(f"{http_url}/metrics", timeout=2).read().decode()
    label = f',reason="{reason}"' if reason else ""
    m = re.search(rf'^{name}{{model="{model}"{label},version="1"}} (\S+)$', text, re.M)
    assert m, f"{name} for {model} missing from /metrics"
    return float(m.group(1))


class StreamCollector:
    """tritonclient stream callback -> per-request token counts, errors, completion."""

    def __init__(self) -> None:
        self.tokens: dict[str, int] = {}
        self.messages: dict[str, int] = {}
        self.final: set[str] = set()
        self.errors: queue.Queue[Exception] = queue.Queue()
        self.lock = threading.Lock()

    def __call__(self, result, error) -> None:
        if error is not None:
            self.errors.put(error)
            return
        r = result.get_response()
        with self.lock:
            self.tokens[r.id] = self.tokens.get(r.id, 0) + r.parameters["tokens"].int64_param
            self.messages[r.id] = self.messages.get(r.id, 0) + 1
            if r.parameters["triton_final_response"].bool_param:
                self.final.add(r.id)


@pytest.mark.timeout(60)
def test_protocol_with_tritonclient(modelserver_factory):
    ms = modelserver_factory("pod-p", token_chunk=4)
    c = tc.InferenceServerClient(ms.grpc_target)
    try:
        assert c.is_server_live() and c.is_server_ready()
        assert c.is_model_ready("llm") and c.is_model_ready("cv")
        assert c.get_model_metadata("cv").inputs[0].name == "image"
        assert c.get_model_config("llm").config.model_transaction_policy.decoupled

        res = c.infer("cv", [image((2, 3, 224, 224), "FP32")])
        assert res.as_numpy("scores").shape == (2, 1000)

        res = c.infer("llm", [], parameters={"max_tokens": 7, "prompt_tokens": 3})
        assert res.get_response().parameters["tokens"].int64_param == 7

        for model, inputs, code in [
            ("nope", [image()], "StatusCode.NOT_FOUND"),
            ("cv", [image((1, 3, 32, 32))], "StatusCode.INVALID_ARGUMENT"),
            ("cv", [image(dtype="FP32")][:0] + [_int32_image()], "StatusCode.INVALID_ARGUMENT"),
        ]:
            with pytest.raises(tc.InferenceServerException) as err:
                c.infer(model, inputs)
            assert err.value.status() == code, err.value.message()

        # A 50-token stream yields 50 tokens: 1 at first token, then chunks of 4 -> 14 messages.
        got = StreamCollector()
        c.start_stream(callback=got)
        c.async_stream_infer("llm", [], request_id="s1", parameters={"max_tokens": 50})
        c.async_stream_infer("nope", [], request_id="s2")
        wait_until(lambda: "s1" in got.final, 20, what="end of the stream")
        c.stop_stream()
        assert got.tokens["s1"] == 50
        assert got.messages["s1"] == 14
        assert "unknown model" in str(got.errors.get(timeout=1))
        # Refused before scheduling (bad shape, datatype): not counted, as in Triton; the good
        # requests are, in /metrics and ModelStatistics alike.
        assert metric(ms.http_url, "nv_inference_request_failure", "cv", "OTHER") == 0
        assert metric(ms.http_url, "nv_inference_request_success", "cv") == 1
        assert metric(ms.http_url, "nv_inference_request_success", "llm") == 2
        stats = {s.name: s.inference_stats for s in c.get_inference_statistics().model_stats}
        assert (stats["cv"].success.count, stats["cv"].fail.count) == (1, 0)
        assert stats["llm"].success.count == 2
    finally:
        c.close()
    assert ms.proc.poll() is None, "a bad request must never crash the server"


@pytest.mark.timeout(60)
def test_stream_errors_as_grpc_status_with_triton_grpc_error_header(modelserver):
    # Triton 24.08+: with `triton_grpc_error: true` a failed request closes the stream with its
    # gRPC code instead of an in-band error_message (which carries none).
    c = tc.InferenceServerClient(modelserver.grpc_target)
    try:
        got = StreamCollector()
        c.start_stream(callback=got, headers={"triton_grpc_error": "true"})
        c.async_stream_infer("nope", [], request_id="bad")
        err = got.errors.get(timeout=10)
        c.stop_stream()
    finally:
        c.close()
    assert err.status() == "StatusCode.NOT_FOUND" and "unknown model" in err.message()
    # without the header the same request gives the in-band message and the stream goes on
    with grpc.insecure_channel(modelserver.grpc_target) as ch:
        stub = pb_grpc.GRPCInferenceServiceStub(ch)
        good = pb.ModelInferRequest(model_name="llm", id="ok")
        good.parameters["max_tokens"].int64_param = 3
        msgs = list(stub.ModelStreamInfer(iter([pb.ModelInferRequest(model_name="nope"), good])))
    assert ["unknown model" in m.error_message for m in msgs].count(True) == 1
    assert sum(m.infer_response.parameters["tokens"].int64_param for m in msgs) == 3


def _int32_image():
    inp = tc.InferInput("image", [1, 3, 224, 224], "INT32")
    inp.set_data_from_numpy(np.zeros((1, 3, 224, 224), np.int32))
    return inp


@pytest.mark.timeout(30)
def test_x_pod_name_on_unary_and_stream(modelserver):
    with grpc.insecure_channel(modelserver.grpc_target) as ch:
        stub = pb_grpc.GRPCInferenceServiceStub(ch)
        _, call = stub.ServerReady.with_call(pb.ServerReadyRequest(), timeout=5)
        assert ("x-pod-name", "pod-a") in call.initial_metadata()
        req = pb.ModelInferRequest(model_name="llm", id="x")
        req.parameters["max_tokens"].int64_param = 3
        stream = stub.ModelStreamInfer(iter([req]), timeout=10)
        assert ("x-pod-name", "pod-a") in stream.initial_metadata()
        assert sum(r.infer_response.parameters["tokens"].int64_param for r in stream) == 3


@pytest.mark.timeout(90)
def test_queue_over_50_fails_readiness_until_drained(modelserver_factory):
    # 80 requests of 100 tokens, 8 decoding at once: ~0.5 s each at this scale, 10 rounds.
    ms = modelserver_factory("pod-q", time_scale=0.25)
    c = tc.InferenceServerClient(ms.grpc_target)
    done: queue.Queue[object] = queue.Queue()
    try:
        for i in range(80):
            c.async_infer(
                "llm",
                [],
                callback=lambda result, error: done.put(error or result),
                request_id=str(i),
                parameters={"max_tokens": 100, "prompt_tokens": 16},
                client_timeout=60,
            )
        ready_url = f"{ms.http_url}/v2/health/ready"
        wait_until(
            lambda: metric(ms.http_url, "nv_inference_pending_request_count", "llm") > 50,
            10,
            what="queue above 50",
        )
        assert http_status(ready_url) == 503
        assert not c.is_server_ready()
        assert c.infer("cv", [image()]).as_numpy("scores") is not None, "served while not ready"
        # Hysteresis: still 503 while the queue is between 25 and 50.
        wait_until(
            lambda: metric(ms.http_url, "nv_inference_pending_request_count", "llm") < 45,
            20,
            what="queue below 45",
        )
        # The queue only shrinks now, so a 200 here means it was already <= 25.
        status = http_status(ready_url)
        assert (
            status == 503 or metric(ms.http_url, "nv_inference_pending_request_count", "llm") <= 25
        )
        wait_until(lambda: http_status(ready_url) == 200, 30, what="ready again")
        assert metric(ms.http_url, "nv_inference_pending_request_count", "llm") <= 25
        results = [done.get(timeout=30) for _ in range(80)]
        errors = [r for r in results if isinstance(r, Exception)]
        assert not errors, errors[:3]
        assert metric(ms.http_url, "nv_inference_request_success", "llm") == 80
    finally:
        c.close()


@pytest.mark.timeout(60)
def test_sigterm_drains_in_flight_then_exits_0(modelserver_factory):
    ms = modelserver_factory("pod-t", token_chunk=8, grace_period=20)
    c = tc.InferenceServerClient(ms.grpc_target)
    got = StreamCollector()
    c.start_stream(callback=got)
    try:
        for i in range(12):  # 8 decoding + 4 queued; ~1 s each at this scale
            c.async_stream_infer("llm", [], request_id=f"r{i}", parameters={"max_tokens": 1000})
        wait_until(lambda: len(got.tokens) >= 8, 10, what="first tokens")
        ms.proc.send_signal(signal.SIGTERM)
        wait_until(
            lambda: http_status(f"{ms.http_url}/v2/health/ready") != 200, 5, what="not ready"
        )
        assert ms.proc.wait(timeout=30) == 0
        assert got.final == {f"r{i}" for i in range(12)}
        assert all(n == 1000 for n in got.tokens.values())
        assert got.errors.empty(), got.errors.get()
    finally:
        c.stop_stream()
        c.close()
    assert "draining 12 in-flight" in ms.log()


@pytest.mark.timeout(30)
def test_sigkill_breaks_a_stream(modelserver_factory):
    ms = modelserver_factory("pod-k")
    c = tc.InferenceServerClient(ms.grpc_target)
    got = StreamCollector()
    c.start_stream(callback=got)
    try:
        c.async_stream_infer("llm", [], request_id="k", parameters={"max_tokens": 5000})
        wait_until(lambda: got.tokens.get("k", 0) > 0, 10, what="first token")
        ms.proc.send_signal(signal.SIGKILL)
        error = got.errors.get(timeout=10)
        assert "k" not in got.final
        assert isinstance(error, tc.InferenceServerException)
        assert error.status() == "StatusCode.UNAVAILABLE", error
    finally:
        c.stop_stream()
        c.close()


def _catches_sigterm(pid: int) -> bool:
    with open(f"/proc/{pid}/status") as f:
        caught = next(line for line in f if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) & (1 << (signal.SIGTERM - 1)))


@pytest.mark.timeout(30)
def test_sigterm_during_startup_exits_0(tmp_path):
    grpc_port, http_port = free_port(), free_port()
    proc = start_modelserver("pod-s", grpc_port, http_port, tmp_path / "s.log")
    try:
        # A signal before the interpreter runs any code kills it like any process; from the first
        # line of main() on (long before grpc is imported and the port serves) it must be exit 0.
        wait_until(lambda: _catches_sigterm(proc.pid), 20, interval=0.01, what="SIGTERM handler")
        was_live = http_status(f"http://127.0.0.1:{http_port}/v2/health/live") == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert not was_live, "the handler must be in place long before the server is live"
    finally:
        stop(proc)
