"""One call's figures from its response messages: tokens, bytes, in-band errors, the final flag,
TTFT and the inter-token gaps (what `calls.Attempt` and `gap_figures` compute per call)."""

import math

import pytest
from tritonclient.grpc import service_pb2 as pb

from loadgate import llm_signatures as sig
from loadgate.traffic import profiles
from loadgate.traffic.calls import Attempt, gap_figures
from loadgate.traffic.scenario import TrafficClass


def attempt(**cls) -> Attempt:
    c = TrafficClass.model_validate({"name": "s", "model": "llm", "kind": "llm_stream", **cls})
    return Attempt(c, 10.0, 10.0, "steady", profiles.reader(c))


def stream_message(tokens: int | None = None, final: bool = False, error: str = "") -> bytes:
    r = pb.ModelInferResponse(model_name="llm")
    r.raw_output_contents.append(b" tok")
    if tokens is not None:
        r.parameters[sig.TOKENS].int64_param = tokens
    if final:
        r.parameters[sig.TRITON_FINAL].bool_param = True
    return pb.ModelStreamInferResponse(infer_response=r, error_message=error).SerializeToString()


def test_each_message_adds_its_tokens_bytes_and_arrival_time():
    a = attempt()
    for i, n in enumerate([1, 1, 8, 8]):
        a.stream_message(stream_message(n), 11.0 + i * 0.1)
    assert a.tokens == 18 and a.nbytes == 16 and a.status == "OK"
    assert a.times == pytest.approx([11.0, 11.1, 11.2, 11.3])


def test_a_message_without_a_token_count_counts_one():
    a = attempt()
    a.stream_message(stream_message(None), 11.0)
    assert a.tokens == 1


def test_an_in_band_error_is_unknown_with_the_servers_words():
    a = attempt()
    a.stream_message(stream_message(1), 11.0)
    a.stream_message(stream_message(error="model   'llm' is\nunavailable"), 11.1)
    assert a.status == "UNKNOWN" and a.error == "model 'llm' is unavailable" and a.tokens == 1


def test_backend_profiles_track_the_final_flag_of_the_last_message():
    a = attempt(profile="vllm", token_count="responses")
    a.stream_message(stream_message(final=True), 11.0)
    assert a.final
    a.stream_message(stream_message(), 11.1)
    assert not a.final  # a message after the final one: the stream did not end at its final


def test_gap_figures_median_is_the_upper_middle_and_max_the_largest():
    assert gap_figures([1.0, 1.1, 1.3, 1.6, 2.0]) == pytest.approx((0.3, 0.4))  # gaps .1 .2 .3 .4
    assert gap_figures([0.0, 0.5, 0.6]) == pytest.approx((0.5, 0.5))
    assert all(math.isnan(x) for x in gap_figures([1.0])) and math.isnan(gap_figures([])[0])
