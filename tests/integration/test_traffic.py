"""Traffic end to end: Locust in its own processes against the twin (Envoy + model servers).

One module-scoped twin (least_request, breaker at 24 in flight, time scale 0.05, no
autoscaler). Each test runs a scenario of a few seconds through `run_scenario` and checks the
samples file: every class present, the serving pod on every OK row, one row per call sent, the
breaker's UNAVAILABLE rows under a flood, CANCELLED rows on an early stop.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import requests

from loadgate.procs import free_port, http_status, spawn, stop, wait_until
from loadgate.schema import SAMPLE_SCHEMA, read_samples
from loadgate.traffic.live import read_live
from loadgate.traffic.runner import run_scenario, start_scenario
from loadgate.traffic.scenario import Scenario
from loadgate.twin.manifests import apply_overrides, load_twin_spec
from loadgate.twin.stack import Twin

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "k8s"

MAX_REQUESTS = 24
CLASSES = [
    {"name": "llm-short", "model": "llm", "kind": "llm_stream", "weight": 3, "max_tokens": 50},
    {"name": "llm-long", "model": "llm", "kind": "llm_stream", "weight": 1, "max_tokens": 400},
    {"name": "llm-unary", "model": "llm", "kind": "llm_unary", "weight": 1, "max_tokens": 20},
    {"name": "cv", "model": "cv", "kind": "cv", "weight": 4, "deadline_s": 5},
]


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    spec = apply_overrides(
        load_twin_spec(FIXTURES), max_requests=MAX_REQUESTS, no_autoscaler=True, time_scale=0.05
    )
    with Twin.up(spec, tmp_path_factory.mktemp("twin")) as t:
        yield t


def scenario(phases, arrival="poisson", classes=CLASSES, **kw) -> Scenario:
    return Scenario.model_validate(
        {"name": "t", "arrival": arrival, "classes": classes, "phases": phases, **kw}
    )


def sent(result) -> int:
    return sum(w["sent"] for w in result.extra["generator"]["workers"].values())


def test_mixed_traffic_two_processes_one_consistent_file(twin, tmp_path):
    sc = scenario(
        [
            {"name": "warmup", "duration_s": 2, "rate": 10},
            {"name": "steady", "duration_s": 5, "rate": 30},
        ],
        generator={"seed": 3},
    )
    r = run_scenario(sc, twin.grpc_target, tmp_path / "run", processes=2)
    df = r.samples
    assert pq.read_schema(r.samples_path).equals(SAMPLE_SCHEMA, check_metadata=False)
    assert set(df["cls"]) == {c["name"] for c in CLASSES}
    assert set(df["phase"]) == {"warmup", "steady"}
    assert df["worker"].nunique() == 2  # both processes' rows, shipped to the master
    assert len(df) == sent(r) > 0.7 * 170  # sent == rows; about the scheduled 170
    ok = df[df["status"] == "OK"]
    assert len(ok) > 0.9 * len(df)
    pods = {p.address for p in twin.platform().pods()}
    assert set(ok["served_by"]) <= pods and ok["served_by"].ne("").all()
    streams = ok[ok["cls"] == "llm-short"]
    assert (streams["tokens"] == 50).all() and (streams["first_byte"] < streams["end"]).all()
    assert (ok[ok["cls"] == "llm-unary"]["tokens"] == 20).all()
    gaps = pq.read_table(tmp_path / "run" / "token_gaps.parquet").to_pandas()
    assert list(gaps["cls"]) == list(df["cls"])  # the sidecar lines up with the samples
    assert (
        gaps[(df["cls"] == "llm-short").to_numpy() & (df["status"] == "OK").to_numpy()]["itl_p50"]
        .notna()
        .all()
    )
    assert r.summary["classes"]["llm-short"]["itl_p50_s"] > 0
    assert (df["start"] >= df["intended"]).all() and (df["end"] >= df["start"]).all()
    assert r.summary["generator"]["dropped"] == 0 and r.summary["generator"]["processes"] == 2
    assert (tmp_path / "run" / "locust_stats.csv").exists() and r.locust_html.exists()
    assert (tmp_path / "run" / "live").is_dir()


def test_flood_phase_gives_unavailable_rows(twin, tmp_path):
    cv = [{"name": "cv", "model": "cv", "kind": "cv"}]
    llm = [{"name": "llm", "model": "llm", "kind": "llm_unary", "weight": 1, "max_tokens": 2000}]
    sc = scenario(
        [
            {"name": "steady", "duration_s": 2, "rate": 5},
            {"name": "flood", "duration_s": 3, "rate": 60},
        ],
        arrival="constant",
        classes=llm + cv,
    )
    r = run_scenario(sc, twin.grpc_target, tmp_path / "run")
    df = r.samples
    flood = df[df["phase"] == "flood"]
    assert (flood["status"] == "UNAVAILABLE").sum() > 10, df.groupby(["phase", "status"]).size()
    assert (df[df["phase"] == "steady"]["status"] == "OK").all()
    assert r.summary["classes"]["cv"]["rejected"] + r.summary["classes"]["llm"]["rejected"] > 10
    assert len(df) == sent(r)


def test_stream_errors_carry_their_grpc_code(twin, tmp_path):
    # The users ask for `triton_grpc_error: true`, so a failed stream request ends with its code
    # (NOT_FOUND here) instead of an in-band message without one.
    classes = [{"name": "typo", "model": "no-such-model", "kind": "llm_stream"}]
    sc = scenario([{"name": "steady", "duration_s": 2, "rate": 5}], "constant", classes)
    df = run_scenario(sc, twin.grpc_target, tmp_path / "run").samples
    assert len(df) == 10 and set(df["status"]) == {"NOT_FOUND"}
    pods = {p.address for p in twin.platform().pods()}
    assert set(df["served_by"]) <= pods  # the pod answered: its address is still on the row


def test_stop_event_cancels_in_flight_and_still_writes_every_row(twin, tmp_path):
    classes = [
        {"name": "llm", "model": "llm", "kind": "llm_stream", "max_tokens": 2000},
        {"name": "llm-unary", "model": "llm", "kind": "llm_unary", "max_tokens": 2000},
        {"name": "cv", "model": "cv", "kind": "cv", "weight": 2},
    ]
    sc = scenario(
        [{"name": "steady", "duration_s": 60, "rate": 8}], arrival="constant", classes=classes
    )
    stop_event = threading.Event()
    out = tmp_path / "run"

    def stop_once_load_flows() -> None:  # independent of machine speed: 20 CV calls finished
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not stop_event.is_set():
            if (read_live(out)["cls"] == "cv").sum() >= 20:
                break
            time.sleep(0.2)
        stop_event.set()

    threading.Thread(target=stop_once_load_flows, daemon=True).start()
    t0 = time.monotonic()
    # Two processes: the stop must reach both workers and wait for both final messages.
    r = run_scenario(sc, twin.grpc_target, out, processes=2, stop_event=stop_event)
    assert time.monotonic() - t0 < 60  # stopped before the 60 s schedule
    df = r.samples
    cancelled = df[df["status"] == "CANCELLED"]
    # 2000-token calls were still running: streams and unary futures are cancelled
    assert set(cancelled["cls"]) >= {"llm", "llm-unary"}, df.groupby(["cls", "status"]).size()
    assert len(df) == sent(r) and r.summary["generator"]["stopped_early"]
    assert r.extra["generator"]["finals"] == 2 and df["worker"].nunique() == 2


def test_closed_loop_phases(twin, tmp_path):
    sc = scenario(
        [
            {"name": "few", "duration_s": 3, "users": 2},
            {"name": "more", "duration_s": 3, "users": 6},
        ],
        arrival="closed",
        classes=CLASSES[:1] + CLASSES[3:],
        closed={"wait_s": [0.05, 0.1]},
    )
    h = start_scenario(sc, twin.grpc_target, tmp_path / "run")
    load_started = h.wait_load_started(timeout=60)
    r = h.wait()
    df = r.samples
    assert h.started <= load_started <= df["start"].min()
    assert set(df["phase"]) == {"few", "more"} and set(df["cls"]) == {"llm-short", "cv"}
    assert (df["intended"] == df["start"]).all()  # closed loop: no schedule
    assert len(df) == sent(r) and (df["status"] == "OK").mean() > 0.9


def test_locustfile_web_ui_runs_users_against_the_twin(twin, tmp_path):
    port = free_port()
    ui = f"http://127.0.0.1:{port}"
    out = tmp_path / "ui"
    proc = spawn(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            "loadtests/locustfile.py",
            "--host",
            twin.grpc_target,
            "--web-host",
            "127.0.0.1",
            "--web-port",
            str(port),
        ],
        tmp_path / "locust.log",
        env={**os.environ, "LOADGATE_OUT": str(out)},
    )
    try:
        wait_until(lambda: http_status(f"{ui}/") == 200, 30, what="locust web UI")
        form = {"user_count": 4, "spawn_rate": 4, "host": twin.grpc_target}
        assert requests.post(f"{ui}/swarm", data=form, timeout=10).json()["success"]
        time.sleep(4)
        requests.post(f"{ui}/stop", timeout=10)
        wait_until(lambda: (out / "samples.parquet").exists(), 30, what="samples after stop")
    finally:
        stop(proc, grace=10)
    df = read_samples(out / "samples.parquet")
    assert len(df) > 5 and set(df["phase"]) == {"ui"}
    assert (df["intended"] == df["start"]).all() and (df["status"] == "OK").mean() > 0.8
    assert "Traceback" not in (tmp_path / "locust.log").read_text()
