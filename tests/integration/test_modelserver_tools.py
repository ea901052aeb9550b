"""`loadgate-modelserver --llm-profile vllm|tensorrtllm` against the official tritonclient: the
published signature, decoupled streaming of 50 and 2,000 tokens with the backends' own token
counts, Triton's refusals; ModelStatistics against /metrics; perf_analyzer's server-side section.

The requests here are written with tritonclient's InferInput from the backends' documented
inputs, not with loadgate's profiles, so a mistake shared by loadgate's client and server shows.
"""

from __future__ import annotations

import json
import queue
import re
import subprocess
import urllib.request

import numpy as np
import pytest
import tritonclient.grpc as tc

from loadgate.perf_analyzer import perf_analyzer
from loadgate.procs import wait_until

pytestmark = pytest.mark.integration


def metrics(http_url: str) -> dict[tuple[str, str, str], float]:
    """(name, model, reason) -> value of every series on /metrics (reason "" when unlabelled)."""
    text = urllib.request.urlopen(f"{http_url}/metrics", timeout=2).read().decode()
    out = {}
    for m in re.finditer(r"^(\w+)\{([^}]*)\} (\S+)$", text, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        out[(m.group(1), labels["model"], labels.get("reason", ""))] = float(m.group(3))
    return out


def tensor(name: str, dtype: str, values, batched: bool) -> tc.InferInput:
    arr = np.array(values, dtype=object if dtype == "BYTES" else None)
    arr = arr.astype({"BOOL": bool, "INT32": np.int32}.get(dtype, arr.dtype))
    arr = arr.reshape([1, len(values)] if batched else [len(values)])
    t = tc.InferInput(name, list(arr.shape), dtype)
    t.set_data_from_numpy(arr)
    return t


def vllm_inputs(max_tokens, stream=True, **extra) -> list[tc.InferInput]:
    # As GenAI-Perf formats them: numbers in sampling_parameters are strings.
    params = json.dumps({"max_tokens": str(max_tokens), "min_tokens": str(max_tokens)})
    ins = [
        tensor("text_input", "BYTES", ["the of and to in for on"], False),
        tensor("stream", "BOOL", [stream], False),
        tensor("sampling_parameters", "BYTES", [params], False),
        tensor("exclude_input_in_output", "BOOL", [True], False),
    ]
    return ins + [tensor(k, "BOOL", [v], False) for k, v in extra.items()]


def trtllm_inputs(max_tokens, stream=True, **extra) -> list[tc.InferInput]:
    ins = [
        tensor("text_input", "BYTES", ["the of and to in for on"], True),
        tensor("max_tokens", "INT32", [max_tokens], True),
        tensor("stream", "BOOL", [stream], True),
        tensor("exclude_input_in_output", "BOOL", [True], True),
    ]
    return ins + [tensor(k, "BOOL", [v], True) for k, v in extra.items()]


INPUTS = {"vllm": vllm_inputs, "tensorrtllm": trtllm_inputs}


class Stream:
    """tritonclient stream callback -> responses and errors in order."""

    def __init__(self) -> None:
        self.results: queue.Queue = queue.Queue()

    def __call__(self, result, error) -> None:
        self.results.put(error if error is not None else result)

    def until_final(self, timeout: float = 30) -> list:
        out = []
        while True:
            r = self.results.get(timeout=timeout)
            out.append(r)
            if isinstance(r, Exception):
                return out
            if r.get_response().parameters["triton_final_response"].bool_param:
                return out


@pytest.mark.timeout(90)
@pytest.mark.parametrize("profile", ["vllm", "tensorrtllm"])
def test_pose_serves_the_backends_signature_and_token_counts(modelserver_factory, profile):
    ms = modelserver_factory(f"pod-{profile}", time_scale=0.01, llm_profile=profile)
    c = tc.InferenceServerClient(ms.grpc_target)
    try:
        meta = c.get_model_metadata("llm")
        cfg = c.get_model_config("llm").config
        names = {i.name: (i.datatype, list(i.shape)) for i in meta.inputs}
        optional = {i.name: i.optional for i in cfg.input}
        assert cfg.model_transaction_policy.decoupled
        if profile == "vllm":  # vllm_backend's auto-completed config
            assert (cfg.backend, cfg.max_batch_size, meta.platform) == ("vllm", 0, "vllm")
            assert names["text_input"] == ("BYTES", [1]) and not optional["text_input"]
            assert (
                names["sampling_parameters"] == ("BYTES", [1]) and optional["sampling_parameters"]
            )
            assert names["stream"] == ("BOOL", [1]) and names["image"] == ("BYTES", [-1])
            outputs = {o.name: (o.datatype, list(o.shape)) for o in meta.outputs}
            assert outputs["num_output_tokens"] == ("UINT32", [-1])
        else:  # the TensorRT-LLM ensemble: batch dimension on every tensor
            assert (cfg.platform, cfg.max_batch_size) == ("ensemble", 8)
            assert names["max_tokens"] == ("INT32", [-1, 1]) and not optional["max_tokens"]
            assert names["temperature"] == ("FP32", [-1, 1]) and optional["temperature"]
            outputs = {o.name: (o.datatype, list(o.shape)) for o in meta.outputs}
            assert outputs["num_output_tokens"] == ("INT32", [-1, 1])
        assert outputs["text_output"][0] == "BYTES"

        for max_tokens in (50, 2000):
            got = Stream()
            c.start_stream(callback=got)
            c.async_stream_infer(
                "llm", INPUTS[profile](max_tokens, return_num_output_tokens=True), request_id="r"
            )
            responses = got.until_final()
            c.stop_stream()
            assert not any(isinstance(r, Exception) for r in responses), responses[-1]
            # one response per token (token chunk 1), each counting its own tokens
            assert len(responses) == max_tokens
            counts = [int(r.as_numpy("num_output_tokens").sum()) for r in responses]
            assert counts == [1] * max_tokens
            text = b"".join(r.as_numpy("text_output").reshape(-1)[0] for r in responses)
            assert text == b" tok" * max_tokens  # the prompt is not echoed
            assert {r.get_response().id for r in responses} == {"r"}

        # stream false: one response with every token
        got = Stream()
        c.start_stream(callback=got)
        c.async_stream_infer(
            "llm", INPUTS[profile](50, stream=False, return_num_output_tokens=True)
        )
        (one,) = got.until_final()
        c.stop_stream()
        assert int(one.as_numpy("num_output_tokens").sum()) == 50

        # Triton refuses ModelInfer for a decoupled model
        with pytest.raises(tc.InferenceServerException) as err:
            c.infer("llm", INPUTS[profile](5, stream=False))
        assert err.value.status() == "StatusCode.UNIMPLEMENTED"
        assert "decoupled transaction policy" in err.value.message()
    finally:
        c.close()


@pytest.mark.timeout(60)
def test_pose_refuses_requests_as_triton_does(modelserver_factory):
    ms = modelserver_factory("pod-t", llm_profile="tensorrtllm")
    c = tc.InferenceServerClient(ms.grpc_target)
    try:
        cases = [
            # no batch dimension, as a client written for vLLM would send
            ([tensor("text_input", "BYTES", ["hi"], False)], "requires a batch dimension"),
            ([tensor("text_input", "BYTES", ["hi"], True)], "missing required input(s) ['max_tokens']"),
            (
                [tensor("text_input", "BYTES", ["hi"], True), tensor("max_tokens", "BOOL", [1], True)],
                "data-type is 'BOOL', but model 'llm' expects 'INT32'",
            ),
            (trtllm_inputs(5) + [tensor("sampling_parameters", "BYTES", ["{}"], True)], "unexpected inference input 'sampling_parameters'"),
        ]  # fmt: skip
        got = Stream()
        c.start_stream(callback=got)
        for inputs, words in cases:
            c.async_stream_infer("llm", inputs)
            err = got.results.get(timeout=10)
            assert isinstance(err, tc.InferenceServerException) and words in err.message(), err
        c.stop_stream()
    finally:
        c.close()
    # refused before scheduling: not counted anywhere, as in Triton
    m = metrics(ms.http_url)
    assert m[("nv_inference_request_success", "llm", "")] == 0
    assert sum(v for (n, model, _), v in m.items() if n.endswith("failure") and model == "llm") == 0


def _open_stream(target: str, max_tokens: int) -> tuple[tc.InferenceServerClient, Stream]:
    """A client of its own per stream, so that stream alone can be cancelled."""
    c, got = tc.InferenceServerClient(target), Stream()
    c.start_stream(callback=got)
    c.async_stream_infer("llm", vllm_inputs(max_tokens))
    return c, got


@pytest.mark.timeout(90)
def test_model_statistics_agree_with_prometheus(modelserver_factory):
    # One decoding slot: the first stream executes, the next two wait in the queue.
    ms = modelserver_factory("pod-s", time_scale=0.2, max_batch_size=1, llm_profile="vllm")
    c = tc.InferenceServerClient(ms.grpc_target)
    m = lambda: metrics(ms.http_url)  # noqa: E731
    running, first = _open_stream(ms.grpc_target, 2000)
    first.results.get(timeout=10)  # its first token: it executes
    queued = [_open_stream(ms.grpc_target, 10)[0] for _ in range(2)]
    wait_until(lambda: m()[("nv_inference_pending_request_count", "llm", "")] == 2, 10)
    for q in queued:
        q.stop_stream(cancel_requests=True)
        q.close()
    wait_until(lambda: m()[("nv_inference_request_failure", "llm", "CANCELED")] == 2, 10)
    running.stop_stream(cancel_requests=True)  # cancelled while executing: a success
    running.close()
    wait_until(lambda: m()[("nv_inference_request_success", "llm", "")] == 1, 10)
    got = Stream()
    c.start_stream(callback=got)
    for _ in range(3):
        c.async_stream_infer("llm", vllm_inputs(20))
        assert not isinstance(got.until_final()[-1], Exception)
    c.stop_stream()
    img = tc.InferInput("image", [1, 3, 224, 224], "UINT8")
    img.set_data_from_numpy(np.zeros((1, 3, 224, 224), np.uint8))
    for _ in range(2):
        c.infer("cv", [img])

    stats = {s.name: s for s in c.get_inference_statistics().model_stats}
    prom = metrics(ms.http_url)
    c.close()
    llm, cv = stats["llm"], stats["cv"]
    assert llm.inference_stats.success.count == 4 and llm.inference_stats.fail.count == 2
    assert (cv.inference_count, cv.execution_count) == (2, 2)
    assert [(b.batch_size, b.compute_infer.count) for b in cv.batch_stats] == [(1, 2)]
    for name, s in stats.items():
        i = s.inference_stats
        assert prom[("nv_inference_request_success", name, "")] == i.success.count
        fails = sum(
            prom[("nv_inference_request_failure", name, r)]
            for r in ("REJECTED", "CANCELED", "BACKEND", "OTHER")
        )
        assert fails == i.fail.count
        assert prom[("nv_inference_count", name, "")] == s.inference_count
        assert prom[("nv_inference_exec_count", name, "")] == s.execution_count
        assert s.execution_count == sum(b.compute_infer.count for b in s.batch_stats)
        for metric, d in [
            ("request_duration_us", i.success),
            ("queue_duration_us", i.queue),
            ("compute_input_duration_us", i.compute_input),
            ("compute_infer_duration_us", i.compute_infer),
            ("compute_output_duration_us", i.compute_output),
        ]:
            assert prom[(f"nv_inference_{metric}", name, "")] == pytest.approx(
                d.ns / 1000, abs=1e-3
            )
            assert d.count == i.success.count
        # durations never contradict each other: queue + compute within the request time
        assert i.queue.ns + i.compute_infer.ns <= i.success.ns
        assert s.last_inference > 0
    # the request cancelled while executing is timed until its cancellation, not to 2000 tokens
    assert llm.inference_stats.compute_infer.ns < 2000 * 0.02 * 0.2 * 1e9


def _perf_analyzer() -> tuple[list[str], dict[str, str]]:
    """perf_analyzer's command and environment; skips with the reason when it cannot run here."""
    found = perf_analyzer()
    if isinstance(found, str):
        pytest.skip(found)
    return found


@pytest.mark.timeout(120)
def test_perf_analyzer_shows_the_server_side_section(modelserver_factory, tmp_path):
    exe, env = _perf_analyzer()
    ms = modelserver_factory("pod-pa", time_scale=0.05, llm_profile="vllm")
    data = tmp_path / "vllm.json"
    data.write_text(json.dumps({"data": [{
        "text_input": ["the of and to in"], "stream": [True], "exclude_input_in_output": [True],
        "sampling_parameters": [json.dumps({"max_tokens": 50})],
    }]}))  # fmt: skip
    common = ["-i", "grpc", "-u", ms.grpc_target, "--concurrency-range", "2"]
    # a wide stability band and few windows: this shared machine's timings are noisy
    common += ["--measurement-interval", "1500", "-s", "1000", "--max-trials", "3"]
    runs = {
        "cv": ["-m", "cv", "--shape", "image:3,224,224"],
        "llm": ["-m", "llm", "--streaming", "--input-data", str(data)],
    }
    for model, args in runs.items():
        out = subprocess.run(
            exe + args + common, env=env, capture_output=True, text=True, timeout=100
        )
        text = out.stdout + out.stderr
        assert out.returncode == 0, text[-2000:]
        server = text[text.index("Server:") :]
        n = int(re.search(r"Successful request count: (\d+)", server).group(1))
        assert n > 0 and f"Inference count: {n}" in server  # batch 1 requests
        parts = re.search(
            r"Avg request latency: (\d+) usec \(overhead (\d+) usec \+ queue (\d+) usec \+ compute "
            r"input (\d+) usec \+ compute infer (\d+) usec \+ compute output (\d+) usec\)",
            server,
        )
        assert parts, server
        total, *pieces = map(int, parts.groups())
        overhead, queue_us, c_in, infer, c_out = pieces
        assert infer > 0 and overhead >= 0 and sum(pieces) == pytest.approx(total, abs=2)
        if model == "llm":
            assert "Detected decoupled model" in text
