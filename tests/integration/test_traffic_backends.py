"""Request profiles end to end: loadgate's Locust users against `loadgate-modelserver
--llm-profile <p>` (and through the twin), the wrong profile refused in one line before any load,
and error words kept on the rows and counted per message in the summary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import tritonclient.grpc as tc
import yaml

from loadgate.errors import UserError
from loadgate.traffic.runner import check_target, run_scenario
from loadgate.traffic.scenario import Scenario
from loadgate.twin.manifests import apply_overrides, load_twin_spec
from loadgate.twin.stack import Twin

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "k8s"

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

PROFILES = ["loadgate", "vllm", "tensorrtllm"]


def scenario(classes: list[dict], rate: float = 4, seconds: float = 2, **extra) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "profiles",
            "arrival": "constant",
            "classes": classes,
            "phases": [{"name": "steady", "duration_s": seconds, "rate": rate}],
            "generator": {"seed": 7},
            **extra,
        }
    )


def llm_classes(profile: str, **extra) -> list[dict]:
    return [
        {"name": "short", "model": "llm", "kind": "llm_stream", "max_tokens": 50, "prompt_tokens": 16, "profile": profile, **extra},
        {"name": "long", "model": "llm", "kind": "llm_stream", "max_tokens": 2000, "prompt_tokens": 16, "profile": profile, "deadline_s": 60, **extra},
    ]  # fmt: skip


def assert_exact_tokens(df) -> None:
    bad = df[(df["status"] != "OK") | (df["error"] != "")]
    assert bad.empty, bad[["cls", "status", "error"]].head()
    want = df["cls"].map({"short": 50, "long": 2000})
    assert (df["tokens"] == want).all(), df.groupby("cls")["tokens"].unique()
    assert set(df["cls"]) == {"short", "long"}


@pytest.mark.parametrize("profile", PROFILES)
def test_each_profile_counts_its_backends_tokens(modelserver_factory, tmp_path, profile):
    ms = modelserver_factory(f"pod-{profile}", time_scale=0.01, llm_profile=profile)
    r = run_scenario(scenario(llm_classes(profile)), ms.grpc_target, tmp_path / "run")
    assert len(r.samples) == 8
    assert_exact_tokens(r.samples)
    assert r.summary["total"]["error_messages"] == []


def test_one_response_per_token_counting(modelserver_factory, tmp_path):
    # token_count: responses counts the streamed responses (exact at one token per response)
    ms = modelserver_factory("pod-r", time_scale=0.01, llm_profile="tensorrtllm")
    sc = scenario(llm_classes("tensorrtllm", token_count="responses"))
    assert_exact_tokens(run_scenario(sc, ms.grpc_target, tmp_path / "run").samples)


def test_the_wrong_profile_is_refused_before_any_load(modelserver_factory, tmp_path):
    servers = {p: modelserver_factory(f"pod-{p}", llm_profile=p) for p in PROFILES}

    def refusal(pose: str, **cls) -> str:
        c = {"name": "c", "model": "llm", "kind": "llm_stream", **cls}
        with pytest.raises(UserError) as err:
            check_target(servers[pose].grpc_target, scenario([c]))
        return str(err.value)

    msg = refusal("tensorrtllm", profile="vllm")
    assert msg.startswith("class c: model 'llm' has no input 'sampling_parameters' (profile vllm)")
    assert "its inputs: text_input, decoder_text_input, max_tokens" in msg
    assert "set profile: vllm" in refusal("vllm", profile="loadgate")
    assert "set profile: tensorrtllm" in refusal("tensorrtllm", profile="loadgate")
    assert "has no input 'stream' (profile tensorrtllm)" in refusal(
        "loadgate", profile="tensorrtllm"
    )
    assert "Triton refuses ModelInfer" in refusal("vllm", profile="vllm", kind="llm_unary")
    assert "no signature for model 'nope'" in refusal("vllm", profile="vllm", model="nope")
    for p in PROFILES:  # each pose accepts its own profile
        check_target(servers[p].grpc_target, scenario(llm_classes(p)))

    # The command: one line, exit 2, and not one request reached the server.
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario(llm_classes("vllm")).model_dump(mode="json")))
    target = servers["tensorrtllm"].grpc_target
    out = subprocess.run(
        [sys.executable, "-m", "loadgate.cli", "run", str(path), "--target", target],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("loadgate: error: class short: model 'llm'")
    assert "Traceback" not in out.stderr
    assert not list(tmp_path.rglob("samples.parquet"))
    c = tc.InferenceServerClient(target)
    (llm,) = c.get_inference_statistics("llm").model_stats
    c.close()
    assert llm.inference_stats.success.count == llm.inference_stats.fail.count == 0


def test_errors_keep_their_words_and_are_counted_per_message(modelserver_factory, tmp_path):
    ms = modelserver_factory("pod-e", time_scale=0.01)
    classes = [
        {"name": "ok", "model": "llm", "kind": "llm_stream", "max_tokens": 5, "weight": 2},
        # the server refuses both: a gRPC status with details, and an in-band stream error
        {"name": "unary", "model": "llm", "kind": "llm_unary", "max_tokens": 200_000},
        {"name": "stream", "model": "llm", "kind": "llm_stream", "max_tokens": 200_000},
    ]
    # without triton_grpc_error the stream's error is in-band: no code, but its words
    sc = scenario(classes, rate=10, client={"stream_grpc_errors": False})
    r = run_scenario(sc, ms.grpc_target, tmp_path / "run")
    df = r.samples
    words = "parameter 'max_tokens' must be 1..100000"
    by_cls = {c: g for c, g in df.groupby("cls")}
    assert (by_cls["unary"]["status"] == "INVALID_ARGUMENT").all()
    assert (by_cls["stream"]["status"] == "UNKNOWN").all()
    assert (by_cls["unary"]["error"] == words).all() and (by_cls["stream"]["error"] == words).all()
    assert (by_cls["ok"]["error"] == "").all() and (by_cls["ok"]["status"] == "OK").all()
    messages = r.summary["total"]["error_messages"]
    assert sorted((m["status"], m["message"], m["count"]) for m in messages) == sorted(
        [
            ("INVALID_ARGUMENT", words, len(by_cls["unary"])),
            ("UNKNOWN", words, len(by_cls["stream"])),
        ]
    )
    assert "errors by message:" in r.table and words in r.table


# every profile is counted against the model server above; through the twin (its pods posing,
# Envoy between) one real backend's profile in `make test`, the others in `make test-long`
@pytest.mark.parametrize(
    "profile", [p if p == "vllm" else pytest.param(p, marks=pytest.mark.long) for p in PROFILES]
)
def test_through_the_twin_with_pods_posing_as_the_backend(tmp_path, profile):
    # The twin passes extra modelserver flags to its pods (the Deployment's container args do
    # the same): every pod poses as the backend; token_chunk 8 as in the gates, so each
    # response carries 8 tokens and only the backend's reported count is exact.
    spec = apply_overrides(
        load_twin_spec(FIXTURES), replicas=2, no_autoscaler=True, time_scale=0.02,
        llm_profile=profile,
    )  # fmt: skip
    with Twin.up(spec, tmp_path / "twin") as twin:
        sc = scenario(llm_classes(profile), rate=5)
        r = run_scenario(sc, twin.grpc_target, tmp_path / "run")
    assert_exact_tokens(r.samples)
    assert r.samples["served_by"].ne("").all()
