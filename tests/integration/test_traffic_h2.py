"""loadgate's HTTP/2 client in Locust, against a grpcio server with a known token schedule.

The server sends each stream's tokens at planned offsets and records when it handed each one
to grpc (by the call's x-request-id), so the client's TTFT and inter-token gaps are checked
against the server's own clock (same machine): exact up to delivery, never rounded into bursts
or lost. Also: servers that GOAWAY every few hundred milliseconds (max_connection_age) cost no
call, a stalled stream ends DEADLINE_EXCEEDED at its deadline, one-token-per-message streams
of 2000 messages arrive whole.
"""

from __future__ import annotations

import threading
import time
from concurrent import futures

import grpc
import numpy as np
import pyarrow.parquet as pq
import pytest
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc

from loadgate.procs import free_port
from loadgate.traffic.runner import run_scenario
from loadgate.traffic.scenario import Scenario

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

# seconds after the request: first token, five 20 ms gaps, one 200 ms gap, five 20 ms gaps
SCHEDULE = [0.1] + [0.02] * 5 + [0.2] + [0.02] * 5
STALL = "stall"  # model name of a stream that sends one token, then nothing


class Scheduled(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self) -> None:
        self.sent: dict[str, list[float]] = {}  # request id -> when each token was handed over
        self.peers: set[str] = set()  # client address:port, one per connection
        self.served = 0
        self.lock = threading.Lock()

    def ServerLive(self, request, context):
        return pb.ServerLiveResponse(live=True)

    def ModelInfer(self, request, context):
        self.peers.add(context.peer())
        self.served += 1
        context.send_initial_metadata((("x-pod-name", "sched-0"),))
        return pb.ModelInferResponse(model_name=request.model_name)

    def ModelStreamInfer(self, request_iterator, context):
        rid = dict(context.invocation_metadata()).get("x-request-id", "")
        context.send_initial_metadata((("x-pod-name", "sched-0"),))
        for req in request_iterator:
            n = req.parameters["max_tokens"].int64_param
            gaps = SCHEDULE if n == len(SCHEDULE) else [0.0] * n
            due = time.monotonic()
            times = []
            for i, gap in enumerate(gaps):
                due += gap
                if (wait := due - time.monotonic()) > 0:
                    time.sleep(wait)
                r = pb.ModelInferResponse(model_name=req.model_name)
                r.parameters["tokens"].int64_param = 1
                times.append(time.time())
                yield pb.ModelStreamInferResponse(infer_response=r)
                if req.model_name == STALL and i == 0:
                    while context.is_active():  # until the client gives up
                        time.sleep(0.01)
                    return
            with self.lock:
                self.sent[rid] = times


@pytest.fixture
def server(request):
    options = getattr(request, "param", [])
    servicer = Scheduled()
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=64), options=options)
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, srv)
    port = free_port()
    srv.add_insecure_port(f"127.0.0.1:{port}")
    srv.start()
    try:
        servicer.server = srv
        yield f"127.0.0.1:{port}", servicer
    finally:
        srv.stop(grace=1).wait(5)


def scenario(classes, rate=10, duration=2.0) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "h2",
            "arrival": "constant",
            "classes": classes,
            "phases": [{"name": "steady", "duration_s": duration, "rate": rate}],
        }
    )


def test_ttft_and_inter_token_gaps_match_the_servers_send_times(server, tmp_path):
    target, servicer = server
    cls = {"name": "s", "model": "llm", "kind": "llm_stream", "max_tokens": len(SCHEDULE)}
    r = run_scenario(scenario([cls]), target, tmp_path / "run")
    gaps = pq.read_table(tmp_path / "run" / "token_gaps.parquet").to_pandas()
    df = r.samples.assign(itl_p50=gaps["itl_p50"], itl_max=gaps["itl_max"])
    assert len(df) == 20 and (df["status"] == "OK").all() and (df["tokens"] == 12).all()
    for row in df.itertuples():
        sent = servicer.sent[row.request_id]
        gaps = np.diff(sent)
        # TTFT: the first token's arrival, a little after the server handed it over
        assert 0 <= row.first_byte - sent[0] < 0.03, (row.first_byte, sent[0])
        assert row.first_byte - row.start >= SCHEDULE[0]
        # the gaps the client saw are the server's, up to delivery jitter (not bursts of 0)
        assert abs(row.itl_max - gaps.max()) < 0.03 and row.itl_max >= 0.17
        assert abs(row.itl_p50 - np.sort(gaps)[len(gaps) // 2]) < 0.015
        assert row.itl_p50 > 0.005
        assert row.end >= sent[-1]
    assert r.summary["classes"]["s"]["itl_p50_s"] == pytest.approx(0.02, abs=0.015)


@pytest.mark.parametrize("server", [[("grpc.max_connection_age_ms", 300)]], indirect=True)
def test_server_goaways_cost_no_call(server, tmp_path):
    # grpc-core sends GOAWAY to every connection older than 300 ms: the client must move to a
    # new connection and never lose or fail a call for it.
    target, servicer = server
    classes = [
        {"name": "s", "model": "llm", "kind": "llm_stream", "max_tokens": 20},
        {"name": "u", "model": "cv", "kind": "cv"},
    ]
    r = run_scenario(scenario(classes, rate=100, duration=3.0), target, tmp_path / "run")
    df = r.samples
    assert len(df) == 300, df["status"].value_counts()
    assert (df["status"] == "OK").all(), df.groupby(["status", "error"]).size()
    assert (df[df["cls"] == "s"]["tokens"] == 20).all()
    assert len(servicer.peers) >= 4  # the calls really went over many connections


def test_a_stalled_stream_ends_at_its_deadline(server, tmp_path):
    target, _ = server
    cls = {"name": "s", "model": STALL, "kind": "llm_stream", "max_tokens": 5, "deadline_s": 0.5}
    r = run_scenario(scenario([cls], rate=5, duration=1.0), target, tmp_path / "run")
    df = r.samples
    assert len(df) == 5 and set(df["status"]) == {"DEADLINE_EXCEEDED"}
    took = df["end"] - df["intended"]
    assert (took >= 0.5).all() and (took < 1.0).all(), took
    assert (df["tokens"] == 1).all() and df["first_byte"].notna().all()


def test_one_token_per_message_streams_arrive_whole(server, tmp_path):
    target, _ = server
    cls = {"name": "s", "model": "llm", "kind": "llm_stream", "max_tokens": 2000}
    r = run_scenario(scenario([cls], rate=5, duration=2.0), target, tmp_path / "run")
    df = r.samples
    assert len(df) == 10 and (df["status"] == "OK").all() and (df["tokens"] == 2000).all()
    assert (df["first_byte"] < df["end"]).all()


def test_a_server_that_goes_away_mid_run_gives_unavailable_rows_not_a_hang(server, tmp_path):
    target, servicer = server

    def stop_after_some_calls() -> None:
        deadline = time.monotonic() + 30
        while servicer.served < 15 and time.monotonic() < deadline:
            time.sleep(0.02)
        servicer.server.stop(grace=0)

    threading.Thread(target=stop_after_some_calls, daemon=True).start()
    classes = [{"name": "u", "model": "cv", "kind": "cv", "deadline_s": 2}]
    r = run_scenario(scenario(classes, rate=20, duration=3.0), target, tmp_path / "run")
    df = r.samples
    assert len(df) == 60 == r.summary["generator"]["sent"]  # every call sent has its row
    assert set(df["status"]) <= {"OK", "UNAVAILABLE"}, df.groupby(["status", "error"]).size()
    assert 15 <= (df["status"] == "OK").sum() < 40
    late = df.sort_values("intended").tail(10)
    assert (late["status"] == "UNAVAILABLE").all()
    assert late["error"].str.contains("failed to connect").all(), late["error"]
