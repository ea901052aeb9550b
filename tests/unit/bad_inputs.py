"""The table of bad inputs a user can give loadgate, each with what its one error line must name.

Every case is run as the user would (`loadgate.cli.main` with its output captured, from a fresh
folder): exit 2, one line `loadgate: error: ...`, no traceback, the file and key named, nothing
started and nothing half-written left that claims to be complete (tests/unit/test_bad_inputs.py).
Placeholders in argv, files and env: {t} the case's folder, {repo} this repository, {closed} a
port nothing listens on, {http} a port where an HTTP/1 server (not gRPC) answers.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
Setup = Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    expect: tuple[str, ...]  # in the error line: the file, the key, what was wrong
    files: dict[str, str] = field(default_factory=dict)  # written into {t} first
    env: dict[str, str] = field(default_factory=dict)
    setup: Setup | None = None
    stdout: bool = False  # may print to stdout before the error (a dry run's plan)


# -- inputs -----------------------------------------------------------------------------------

SCENARIO = """\
name: t
arrival: constant
classes:
  - {name: llm, model: llm, kind: llm_stream, max_tokens: 10, weight: 1}
  - {name: cv, model: cv, kind: cv, weight: 1}
phases:
  - {name: steady, duration_s: 2, rate: 2}
"""
SLO_SCENARIO = SCENARIO.replace(
    "kind: cv, weight: 1}", "kind: cv, weight: 1, slo: {latency_p99_ms: 50}}"
)


def sc(old: str, new: str, base: str = SCENARIO) -> dict[str, str]:
    assert old in base, old
    return {"s.yaml": base.replace(old, new)}


def gate_config() -> str:
    text = (REPO / "loadgate.yaml").read_text()
    text = text.replace("scenario: loadtests/", "scenario: {repo}/loadtests/")
    return text.replace("manifests: fixtures/k8s", "manifests: {repo}/fixtures/k8s")


GATE = gate_config()
KUBE_BLOCK = (
    "\nkubernetes:\n  grpc_target: 127.0.0.1:{closed}\n  kubeconfig: {t}/kc\n"
    "  connect_timeout_s: 0.5\n  read_timeout_s: 0.5\n"
)
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:{closed}"}}]
users: [{name: u, user: {}}]
contexts: [{name: ctx, context: {cluster: c, user: u, namespace: loadgate}}]
current-context: ctx
"""


def lg(old: str, new: str, base: str | None = None) -> dict[str, str]:
    base = GATE if base is None else base
    assert old in base, old
    return {"lg.yaml": base.replace(old, new)}


def kube(block_edit: tuple[str, str] = ("", ""), kubeconfig: str | None = KUBECONFIG) -> dict:
    block = KUBE_BLOCK.replace(*block_edit) if block_edit[0] else KUBE_BLOCK
    files = {"lg.yaml": GATE + block}
    if kubeconfig is not None:
        files["kc"] = kubeconfig
    return files


EXPERIMENT = (REPO / "experiments" / "kill-model-pod.yaml").read_text()


def exp(old: str, new: str) -> dict[str, str]:
    assert old in EXPERIMENT, old
    return {"e.yaml": EXPERIMENT.replace(old, new)}


def manifests(file: str, old: str, new: str) -> Setup:
    """A copy of fixtures/k8s in {t}/m with one edit."""

    def setup(t: Path) -> None:
        shutil.copytree(REPO / "fixtures" / "k8s", t / "m")
        path = t / "m" / file
        text = path.read_text()
        assert old in text, old
        path.write_text(text.replace(old, new, 1))

    return setup


def runs(*edits: Callable[[Path], None]) -> Setup:
    """Run directories as `loadgate run` writes them: {t}/a (complete) and {t}/b, then edits."""

    def setup(t: Path) -> None:
        import numpy as np
        from synthetic_runs import write_run

        rng = np.random.default_rng(1)
        write_run(t / "a", rng, seconds=12)
        write_run(t / "b", rng, seconds=12)
        for edit in edits:
            edit(t)

    return setup


def killed(t: Path) -> None:
    """b was SIGKILLed mid-run: its files look whole, its INCOMPLETE mark stayed."""
    (t / "b" / "INCOMPLETE").write_text('{"command": "loadgate run", "pid": 999999999}\n')


def gate_run(t: Path) -> None:
    (t / "g").mkdir()
    (t / "g" / "summary.json").write_text('{"run_id": "g", "scenario": "s", "stack": "twin"}')


RUN = ("run", "{t}/s.yaml", "--target", "127.0.0.1:{closed}")  # fails unreachable if valid
CAPACITY = ("capacity", "{t}/s.yaml", "--target", "127.0.0.1:{closed}")
GATE_ARGS = ("gate", "--config", "{t}/lg.yaml", "--loadtests", "{repo}/loadtests")
KUBE_GATE = (*GATE_ARGS, "--stack", "kubernetes")
TWIN_UP = ("twin", "up", "--state-dir", "{t}/st")
DRY = ("gameday", "{t}/e.yaml", "--dry-run")
K8S_ENV = {
    "LOADGATE_PLATFORM": "kubernetes",
    "LOADGATE_CONFIG": "{t}/lg.yaml",
    "LOADGATE_CHAOS_SCENARIO": "{repo}/experiments/load/steady.yaml",
}
S = {"s.yaml": SCENARIO}
SLO = {"s.yaml": SLO_SCENARIO}
E = {"e.yaml": EXPERIMENT}

# One case a line: the table reads as a table.
# fmt: off
CASES: list[Case] = [
    # -- the command line itself ------------------------------------------------------------
    Case("unknown-command", ("deploy",), ("No such command 'deploy'",)),
    Case("unknown-global-flag", ("--verbose",), ("--verbose",)),
    Case("run-no-scenario", ("run",), ("Missing argument 'SCENARIO'",)),
    Case("run-unknown-flag", (*RUN, "--json"), ("--json is now -o/--output (table, json)",), S),
    Case("run-output-yaml", (*RUN, "-o", "yaml"), ("'--output'", "'yaml'"), S),
    Case("run-processes-0", (*RUN, "--processes", "0"), ("'--processes'", "0"), S),
    Case("run-processes-abc", (*RUN, "--processes", "abc"), ("'--processes'", "abc"), S),
    Case("run-expect-workers-0", (*RUN, "--expect-workers", "0"), ("'--expect-workers'",), S),
    Case("run-processes-and-workers", (*RUN, "--processes", "2", "--expect-workers", "2"), ("--processes and --expect-workers",), S),
    Case("run-master-bind-port", (*RUN, "--expect-workers", "1", "--master-bind", "0.0.0.0:70000"), ("--master-bind", "70000", "outside 1-65535"), S),
    Case("run-twin-time-scale-0", ("run", "{t}/s.yaml", "--twin-time-scale", "0"), ("'--twin-time-scale'", "> 0"), S),
    Case("run-twin-time-scale-nan", ("run", "{t}/s.yaml", "--twin-time-scale", "nan"), ("'--twin-time-scale'", "finite"), S),
    Case("run-twin-time-scale-abc", ("run", "{t}/s.yaml", "--twin-time-scale", "fast"), ("'--twin-time-scale'", "'fast' is not a number"), S),
    Case("run-twin-override-lb", ("run", "{t}/s.yaml", "--twin-override", "lb=fastest"), ("--twin-override lb",), S),
    Case("run-twin-override-key", ("run", "{t}/s.yaml", "--twin-override", "replica=2"), ("--twin-override replica: unknown",), S),
    Case("run-twin-override-no-value", ("run", "{t}/s.yaml", "--twin-override", "replicas"), ("--twin-override 'replicas'", "KEY=VALUE"), S),
    Case("run-twin-override-time-scale-0", ("run", "{t}/s.yaml", "--twin-override", "time_scale=0"), ("--twin-override time_scale", "greater than 0"), S),
    Case("run-fail-on-error-rate-2", (*RUN, "--fail-on-error-rate", "2"), ("'--fail-on-error-rate'",), S),
    Case("run-fail-on-error-rate-neg", (*RUN, "--fail-on-error-rate", "-0.1"), ("'--fail-on-error-rate'",), S),
    Case("run-out-is-a-file", (*RUN, "--out", "{t}/s.yaml"), ("'--out'", "is a file"), S),
    # -- targets ------------------------------------------------------------------------------
    Case("target-port-wraps", ("run", "{t}/s.yaml", "--target", "127.0.0.1:99999"), ("--target '127.0.0.1:99999'", "port 99999 is outside 1-65535"), S),
    Case("target-port-0", ("run", "{t}/s.yaml", "--target", "127.0.0.1:0"), ("--target", "port 0 is outside"), S),
    Case("target-no-port", ("run", "{t}/s.yaml", "--target", "nohost"), ("--target 'nohost'", "expected HOST:PORT"), S),
    Case("target-no-host", ("run", "{t}/s.yaml", "--target", ":8001"), ("--target ':8001'", "no host"), S),
    Case("target-port-text", ("run", "{t}/s.yaml", "--target", "127.0.0.1:grpc"), ("--target", "'grpc' is not a number"), S),
    Case("target-unreachable", RUN, ("target 127.0.0.1:", "is unreachable (UNAVAILABLE: ipv4:127.0.0.1:", "Connection refused"), S),
    Case("target-not-grpc", ("run", "{t}/s.yaml", "--target", "127.0.0.1:{http}"), ("answers, but not with gRPC (HTTP/2)", "Expected SETTINGS frame"), S),
    Case("target-unknown-host", ("run", "{t}/s.yaml", "--target", "nosuchhost.invalid:8001"), ("target nosuchhost.invalid:8001 is unreachable",), S),
    Case("worker-master-port", ("worker", "{t}/s.yaml", "--master", "127.0.0.1:99999"), ("--master", "outside 1-65535"), S),
    Case("worker-no-master", ("worker", "{t}/s.yaml"), ("Missing option '--master'",), S),
    Case("worker-processes-0", ("worker", "{t}/s.yaml", "--master", "h", "--processes", "0"), ("'--processes'",), S),
    Case("capacity-target-port", ("capacity", "{t}/s.yaml", "--target", "h:123456"), ("--target 'h:123456'", "outside 1-65535"), SLO),
    # -- scenario files -------------------------------------------------------------------------
    Case("scenario-missing", ("run", "{t}/none.yaml", *RUN[2:]), ("none.yaml: no such file",)),
    Case("scenario-is-a-dir", ("run", "{t}", *RUN[2:]), ("is a directory",)),
    Case("scenario-malformed", RUN, ("s.yaml: line 3:", "malformed YAML"), {"s.yaml": 'name: t\nclasses: [\n'}),
    Case("scenario-tab-indent", RUN, ("s.yaml: line", "malformed YAML"), {"s.yaml": 'name: t\nclasses:\n\t- {name: a}\n'}),
    Case("scenario-empty", RUN, ("s.yaml: empty file (expected a scenario)",), {"s.yaml": ""}),
    Case("scenario-a-list", RUN, ("s.yaml: expected a mapping of keys, got a list",), {"s.yaml": '- name: t\n'}),
    Case("scenario-binary", RUN, ("s.yaml", "not UTF-8 text"), setup=lambda t: (t / "s.yaml").write_bytes(b'\xff\xfe\x00bin')),
    Case("scenario-unknown-top-key", RUN, ("s.yaml: phase: unknown key",), sc("phases:", 'phase: []\nphases:')),
    Case("scenario-class-key-typo", RUN, ("s.yaml: classes[1].wieght: unknown key",), sc("kind: cv, weight: 1", "kind: cv, wieght: 1")),
    Case("scenario-no-classes", RUN, ("s.yaml: classes:", "at least 1"), {"s.yaml": 'name: t\nclasses: []\nphases: [{name: a, duration_s: 1, rate: 1}]\n'}),
    Case("scenario-kind", RUN, ("s.yaml: classes[1].kind:", "llm_stream"), sc("kind: cv,", "kind: vision,")),
    Case("scenario-weight-0", RUN, ("s.yaml: classes[1].weight:", "greater than 0"), sc("kind: cv, weight: 1", "kind: cv, weight: 0")),
    Case("scenario-weight-text", RUN, ("s.yaml: classes[1].weight:", "'heavy'"), sc("kind: cv, weight: 1", "kind: cv, weight: heavy")),
    Case("scenario-max-tokens-0", RUN, ("s.yaml: classes[0].max_tokens:",), sc("max_tokens: 10", "max_tokens: 0")),
    Case("scenario-deadline-0", RUN, ("s.yaml: classes[1].deadline_s:",), sc("kind: cv, weight: 1", "kind: cv, weight: 1, deadline_s: 0")),
    Case("scenario-duplicate-class", RUN, ("s.yaml:", "class names must be unique"), sc("name: cv, model: cv", "name: llm, model: cv")),
    Case("scenario-open-loop-no-rate", RUN, ("s.yaml:", "phases[0] (steady)", "needs a rate"), sc("duration_s: 2, rate: 2", "duration_s: 2")),
    Case("scenario-closed-no-users", RUN, ("s.yaml:", "arrival closed needs users"), sc("arrival: constant", "arrival: closed")),
    Case("scenario-arrival", RUN, ("s.yaml: arrival:", "'bursty'"), sc("arrival: constant", "arrival: bursty")),
    Case("scenario-duration-0", RUN, ("s.yaml: phases[0].duration_s:",), sc("duration_s: 2", "duration_s: 0")),
    Case("scenario-rate-negative", RUN, ("s.yaml: phases[0].rate:",), sc("rate: 2", "rate: -5")),
    Case("scenario-pool-0", RUN, ("s.yaml: generator.pool_size:",), {"s.yaml": SCENARIO + 'generator: {pool_size: 0}\n'}),
    Case("scenario-lag-0", RUN, ("s.yaml: generator.max_lag_p99_s:",), {"s.yaml": SCENARIO + 'generator: {max_lag_p99_s: 0}\n'}),
    Case("scenario-slo-ttft-on-cv", RUN, ("s.yaml: classes[1]", "slo.ttft_p99_ms: only llm_stream"), sc("kind: cv, weight: 1", "kind: cv, weight: 1, slo: {ttft_p99_ms: 5}")),
    Case("scenario-slo-error-rate-2", RUN, ("s.yaml: classes[1].slo.error_rate_max:",), sc("kind: cv, weight: 1", "kind: cv, weight: 1, slo: {error_rate_max: 2}")),
    Case("scenario-slo-0", RUN, ("s.yaml: classes[1].slo.latency_p99_ms:", "greater than 0"), sc("kind: cv, weight: 1", "kind: cv, weight: 1, slo: {latency_p99_ms: 0}")),
    Case("scenario-capacity-start-above-max", RUN, ("s.yaml: capacity:", "must not exceed max"), {"s.yaml": SCENARIO + 'capacity: {start: 50, max: 10}\n'}),
    Case("scenario-capacity-tolerance", RUN, ("s.yaml: capacity.tolerance:",), {"s.yaml": SCENARIO + 'capacity: {tolerance: 1.5}\n'}),
    Case("scenario-tls-cert-without-key", RUN, ("s.yaml: client.tls:", "cert and key"), {"s.yaml": SCENARIO + 'client: {tls: {cert: c.pem}}\n'}),
    Case("scenario-tls-ca-missing", RUN, ("s.yaml: client.tls.ca {t}/none.pem: cannot read TLS file",), {"s.yaml": SCENARIO + "client: {tls: {ca: '{t}/none.pem'}}\n"}),
    Case("scenario-metadata-env-unset", RUN, ("s.yaml: client.metadata_env.authorization: environment variable LG_BAD_INPUT_TOKEN is not set",), {"s.yaml": SCENARIO + 'client: {metadata_env: {authorization: LG_BAD_INPUT_TOKEN}}\n'}),
    Case("scenario-vllm-no-prompt", RUN, ("s.yaml: classes[0]", "prompt_tokens >= 1"), sc("max_tokens: 10,", "max_tokens: 10, profile: vllm, prompt_tokens: 0,")),
    Case("scenario-cv-sampling", RUN, ("s.yaml: classes[1]", "LLM classes only"), sc("kind: cv, weight: 1", "kind: cv, weight: 1, sampling: {temperature: 1}")),
    Case("scenario-trtllm-sampling-key", RUN, ("s.yaml: classes[0]", "sampling.temp: not a TensorRT-LLM input"), sc("max_tokens: 10,", "max_tokens: 10, profile: tensorrtllm, sampling: {temp: 1},")),
    Case("scenario-unary-responses", RUN, ("s.yaml: classes[0]", "not for llm_unary"), sc("kind: llm_stream, max_tokens: 10", "kind: llm_unary, token_count: responses, max_tokens: 10")),
    Case("scenario-image-dtype", RUN, ("s.yaml: classes[1].image_dtype:", "'INT8'"), sc("kind: cv, weight: 1", "kind: cv, weight: 1, image_dtype: INT8")),
    Case("scenario-empty-name", RUN, ("s.yaml: name:", "at least 1 character"), sc('name: t\n', "name: ''\n")),
    Case("worker-bad-scenario", ("worker", "{t}/s.yaml", "--master", "h"), ("s.yaml: classes[1].wieght: unknown key",), sc("kind: cv, weight: 1", "kind: cv, wieght: 1")),
    # -- loadgate.yaml (the gate) ---------------------------------------------------------------
    Case("gate-config-missing", ("gate", "--config", "{t}/none.yaml"), ("none.yaml: no such file",)),
    Case("gate-loadtests-missing", (*GATE_ARGS[:3], "--loadtests", "{t}/nolt"), ("nolt: no such folder of gate tests",), {"lg.yaml": GATE}),
    Case("gate-config-malformed", GATE_ARGS, ("lg.yaml: line", "malformed YAML"), {"lg.yaml": 'gates: {balance: [\n'}),
    Case("gate-unknown-top-key", GATE_ARGS, ("lg.yaml: gate: unknown key",), lg("gates:", 'gate: {}\ngates:')),
    Case("gate-no-gates", GATE_ARGS, ("lg.yaml: gates:", "at least 1"), {"lg.yaml": 'gates: {}\n'}),
    Case("gate-unknown-gate", GATE_ARGS, ("lg.yaml:", "gates.balanse: unknown gate"), lg("  balance:", "  balanse:")),
    Case("gate-unknown-threshold", GATE_ARGS, ("lg.yaml:", "gates.balance.thresholds.busiest_share_max: unknown threshold"), lg("busiest_pick_share_max:", "busiest_share_max:")),
    Case("gate-missing-threshold", GATE_ARGS, ("lg.yaml:", "gates.scale_up.thresholds: above_max_max not set"), lg("      above_max_max: 0", "")),
    Case("gate-negative-threshold", GATE_ARGS, ("lg.yaml:", "gates.fail_fast.thresholds.reject_p99_ms_max", ">= 0"), lg("reject_p99_ms_max: 250", "reject_p99_ms_max: -250")),
    Case("gate-infinite-threshold", GATE_ARGS, ("lg.yaml:", "reject_p99_ms_max", "finite"), lg("reject_p99_ms_max: 250", "reject_p99_ms_max: .inf")),
    Case("gate-text-threshold", GATE_ARGS, ("lg.yaml: gates.fail_fast.thresholds.reject_p99_ms_max:", "'fast'"), lg("reject_p99_ms_max: 250", "reject_p99_ms_max: fast")),
    Case("gate-unknown-param", GATE_ARGS, ("lg.yaml: gates.fail_fast.params.slo: unknown key",), lg("      slo_ms: 1500", "      slo: 1500")),
    Case("gate-param-slo-ms-0", GATE_ARGS, ("lg.yaml: gates.fail_fast.params.slo_ms:", "greater than 0"), lg("      slo_ms: 1500", "      slo_ms: 0")),
    Case("gate-window-not-a-phase", GATE_ARGS, ("lg.yaml: gates.balance.window: no phase 'stedy'",), lg("    window: steady", "    window: stedy")),
    Case("gate-scenario-missing", GATE_ARGS, ("lg.yaml: gates.balance.scenario: ", "gates/none.yaml: no such file"), lg("loadtests/scenarios/gates/balance.yaml", "loadtests/scenarios/gates/none.yaml")),
    Case("gate-inline-unknown-class", GATE_ARGS, ("lg.yaml: gates.balance.scenario.classes[0]: no class 'short'",), lg("    scenario: {repo}/loadtests/scenarios/gates/balance.yaml", "    scenario: {name: b, classes: [short], phases: [{name: steady, duration_s: 5, rate: 1}]}")),
    Case("gate-inline-bad-key", GATE_ARGS, ("lg.yaml: gates.balance.scenario: phase: unknown key",), lg("    scenario: {repo}/loadtests/scenarios/gates/balance.yaml", "    scenario: {name: b, classes: [{name: c, model: cv, kind: cv}], phase: []}")),
    Case("gate-stack-kind", GATE_ARGS, ("lg.yaml: stack.kind:", "'docker'"), lg("kind: twin ", "kind: docker ")),
    Case("gate-manifests-missing", GATE_ARGS, ("nomani: no such manifests directory",), lg("manifests: {repo}/fixtures/k8s", "manifests: {t}/nomani")),
    Case("gate-manifests-broken", GATE_ARGS, ("m/modelserver.yaml: line", "malformed YAML"), lg("manifests: {repo}/fixtures/k8s", "manifests: {t}/m"), setup=manifests("modelserver.yaml", "kind: Deployment", 'kind: Deployment\n  bad: [')),
    Case("gate-twin-time-scale-0", GATE_ARGS, ("lg.yaml: stack.twin.time_scale:", "greater than 0"), lg("time_scale: 0.2", "time_scale: 0")),
    Case("gate-twin-lb", GATE_ARGS, ("lg.yaml: stack.twin.lb:", "'fastest'"), lg("    time_scale: 0.2", '    time_scale: 0.2\n    lb: fastest')),
    Case("gate-settle-0", GATE_ARGS, ("lg.yaml: stack.settle_timeout_s:",), lg("settle_timeout_s: 20", "settle_timeout_s: 0")),
    Case("gate-trust-key", GATE_ARGS, ("lg.yaml: trust.lag: unknown key",), {"lg.yaml": GATE + '\ntrust: {lag: 1}\n'}),
    Case("gate-target-port", GATE_ARGS, ("lg.yaml: target:", "outside 1-65535"), {"lg.yaml": GATE + '\ntarget: 127.0.0.1:99999\n'}),
    Case("gate-twin-override-key", (*GATE_ARGS, "--twin-override", "lbb=round_robin"), ("--twin-override lbb: unknown",), {"lg.yaml": GATE}),
    Case("gate-twin-override-time-scale", (*GATE_ARGS, "--twin-override", "time_scale=-1"), ("--twin-override: time_scale:", "greater than 0"), {"lg.yaml": GATE}),
    Case("gate-stack-choice", (*GATE_ARGS, "--stack", "docker"), ("'--stack'", "'docker'"), {"lg.yaml": GATE}),
    Case("gate-output-yaml", (*GATE_ARGS, "-o", "yaml"), ("'--output'",), {"lg.yaml": GATE}),
    # -- loadgate.yaml's kubernetes: block and kubeconfigs ---------------------------------------
    Case("kube-no-block", KUBE_GATE, ("--stack kubernetes: ", "lg.yaml has no top-level 'kubernetes:' block"), {"lg.yaml": GATE}),
    Case("kube-kind-no-block", GATE_ARGS, ("lg.yaml: ", "needs a top-level 'kubernetes:' block"), lg("kind: twin ", "kind: kubernetes ")),
    Case("kube-block-typo", KUBE_GATE, ("lg.yaml: kubernetes.contxt: unknown key",), kube(("  kubeconfig:", '  contxt: x\n  kubeconfig:'))),
    Case("kube-no-grpc-target", KUBE_GATE, ("lg.yaml: kubernetes.grpc_target: Field required",), kube(('  grpc_target: 127.0.0.1:{closed}\n', ""))),
    Case("kube-grpc-target-port", KUBE_GATE, ("lg.yaml: kubernetes.grpc_target:", "outside 1-65535"), kube(("127.0.0.1:{closed}", "127.0.0.1:80800"))),
    Case("kube-grpc-port", KUBE_GATE, ("lg.yaml: kubernetes.grpc_port:", "65535"), kube(("  kubeconfig:", '  grpc_port: 70000\n  kubeconfig:'))),
    Case("kube-example-uncommented", KUBE_GATE, ("kubeconfig", "(from KUBECONFIG) not found"), {"lg.yaml": GATE.replace('\n# kubernetes:', '\nkubernetes:').replace('\n#   ', '\n  ')}, env={"KUBECONFIG": "{t}/no-kubeconfig"}),
    Case("kube-kubeconfig-missing", KUBE_GATE, ("kubeconfig {t}/kc (from kubernetes.kubeconfig) not found",), kube(kubeconfig=None)),
    Case("kube-env-kubeconfig-missing", KUBE_GATE, ("kubeconfig {t}/env-kc (from KUBECONFIG) not found",), kube(('  kubeconfig: {t}/kc\n', "")), env={"KUBECONFIG": "{t}/env-kc"}),
    Case("kube-kubeconfig-malformed", KUBE_GATE, ("kubeconfig {t}/kc: malformed YAML",), kube(kubeconfig='clusters: [\n')),
    Case("kube-kubeconfig-not-one", KUBE_GATE, ("kubeconfig {t}/kc: not a kubeconfig (expected a mapping",), kube(kubeconfig='- just\n- a list\n')),
    Case("kube-kubeconfig-no-current", KUBE_GATE, ("kubeconfig {t}/kc has no current-context; name one with kubernetes.context",), kube(kubeconfig=KUBECONFIG.replace('current-context: ctx\n', ""))),
    Case("kube-context-unknown", KUBE_GATE, ("kube context 'prod' not found in {t}/kc", "available: ctx"), kube(("  kubeconfig:", '  context: prod\n  kubeconfig:'))),
    Case("kube-api-unreachable", KUBE_GATE, ("cannot reach the Kubernetes API at http://127.0.0.1:",), kube()),
    Case("kube-capacity-no-block", ("capacity", "{t}/s.yaml", "--kubernetes-config", "{t}/lg.yaml"), ("lg.yaml: no 'kubernetes:' block",), {**SLO, "lg.yaml": GATE}),
    Case("kube-capacity-config-missing", ("capacity", "{t}/s.yaml", "--kubernetes-config", "{t}/none.yaml"), ("none.yaml: no such file",), SLO),
    Case("kube-capacity-block-typo", ("capacity", "{t}/s.yaml", "--kubernetes-config", "{t}/lg.yaml"), ("lg.yaml: kubernetes.contxt: unknown key",), {**SLO, **kube(("  kubeconfig:", '  contxt: x\n  kubeconfig:'))}),
    # -- the twin and its manifests -------------------------------------------------------------
    Case("twin-manifests-missing", (*TWIN_UP, "--manifests", "{t}/nomani"), ("nomani: no such manifests directory",)),
    Case("twin-manifests-malformed", (*TWIN_UP, "--manifests", "{t}/m"), ("m/envoy.yaml: line", "malformed YAML"), setup=manifests("envoy.yaml", "kind: Deployment", 'kind: Deployment\n  x: [')),
    Case("twin-service-not-headless", (*TWIN_UP, "--manifests", "{t}/m"), ("m/modelserver.yaml", "spec.clusterIP: must be None"), setup=manifests("modelserver.yaml", "clusterIP: None", "clusterIP: 10.0.0.1")),
    Case("twin-unknown-k8s-field", (*TWIN_UP, "--manifests", "{t}/m"), ("m/modelserver.yaml", "replicaz"), setup=manifests("modelserver.yaml", "  replicas:", "  replicaz:")),
    Case("twin-envoy-unknown-field", (*TWIN_UP, "--manifests", "{t}/m"), ("m/envoy-config.yaml", "lb_polcy"), setup=manifests("envoy-config.yaml", "lb_policy:", "lb_polcy:")),
    Case("twin-replicas-negative", (*TWIN_UP, "--replicas", "-1"), ("'--replicas'", "-1 is not in the range x>=0")),
    Case("twin-max-requests-negative", (*TWIN_UP, "--max-requests", "-5"), ("'--max-requests'", "-5 is not in the range x>=0")),
    Case("twin-time-scale-0", (*TWIN_UP, "--time-scale", "0"), ("'--time-scale'", "> 0")),
    Case("twin-time-scale-inf", (*TWIN_UP, "--time-scale", "inf"), ("'--time-scale'", "finite")),
    Case("twin-health-check-0", (*TWIN_UP, "--health-check-interval", "0"), ("'--health-check-interval'",)),
    Case("twin-restart-delay-negative", (*TWIN_UP, "--restart-delay", "-1"), ("'--restart-delay'", ">= 0")),
    Case("twin-lb-choice", (*TWIN_UP, "--lb", "fastest"), ("'--lb'", "'fastest'")),
    Case("twin-status-output", ("twin", "status", "-o", "yaml", "--state-dir", "{t}/st"), ("'--output'",)),
    # -- experiments (gameday) ------------------------------------------------------------------
    Case("gameday-missing", ("gameday", "{t}/none.yaml", "--dry-run"), ("none.yaml: no such experiment file",)),
    Case("gameday-malformed", DRY, ("e.yaml: line 3: malformed YAML",), {"e.yaml": 'title: x\nmethod: [\n'}),
    Case("gameday-no-method", DRY, ("e.yaml: invalid experiment",), {"e.yaml": 'version: 1.0.0\ntitle: x\ndescription: y\n'}),
    Case("gameday-setting-typo", DRY, ("e.yaml: configuration.loadgate_platfrom: unknown key",), exp("  loadgate_platform:", '  loadgate_platfrom: twin\n  loadgate_platform:')),
    Case("gameday-platform", DRY, ("e.yaml: configuration.loadgate_platform:", "'docker'"), E, env={"LOADGATE_PLATFORM": "docker"}),
    Case("gameday-var-no-equals", (*DRY, "--var", "window_s"), ("--var 'window_s': expected KEY=VALUE",), E),
    Case("gameday-var-unknown", (*DRY, "--var", "windw_s=3"), ("--var windw_s: not a configuration key",), E),
    Case("gameday-var-type", (*DRY, "--var", "window_s=abc"), ("--var window_s=abc: expected a number",), E),
    Case("gameday-time-scale-negative", (*DRY, "--time-scale", "-1"), ("'--time-scale'", "> 0"), E),
    Case("gameday-scenario-missing", ("gameday", "{t}/e.yaml"), ("nosuch.yaml: no such file",), E, env={"LOADGATE_CHAOS_SCENARIO": "{t}/nosuch.yaml"}),
    Case("gameday-dry-scenario-missing", DRY, ("would be refused", "nosuch.yaml: no such file"), E, env={"LOADGATE_CHAOS_SCENARIO": "{t}/nosuch.yaml"}, stdout=True),
    Case("gameday-k8s-dry-no-block", DRY, ("would be refused", "lg.yaml: no 'kubernetes:' block"), {**E, "lg.yaml": GATE}, env=K8S_ENV, stdout=True),
    Case("gameday-k8s-dry-block-typo", DRY, ("would be refused", "lg.yaml: kubernetes.contxt: unknown key"), {**E, **kube(("  kubeconfig:", '  contxt: x\n  kubeconfig:'))}, env=K8S_ENV, stdout=True),
    Case("gameday-k8s-not-allowed", ("gameday", "{t}/e.yaml"), ("chaos refused", "not in the allowlist"), {**E, **kube(("  kubeconfig:", '  allowed: [other/ns]\n  kubeconfig:'))}, env=K8S_ENV),
    Case("gameday-k8s-allowlist-entry", ("gameday", "{t}/e.yaml"), ("allowlist entry 'ctx' must be 'context/namespace'",), {**E, **kube(("  kubeconfig:", '  allowed: [ctx]\n  kubeconfig:'))}, env=K8S_ENV),
    Case("gameday-manifests-missing", ("gameday", "{t}/e.yaml", "--manifests", "{t}/nomani"), ("nomani: no such manifests directory",), E, env={"LOADGATE_TWIN_STATE_DIR": "{t}/st", "LOADGATE_CHAOS_SCENARIO": "{repo}/experiments/load/steady.yaml"}),
    # -- capacity -------------------------------------------------------------------------------
    Case("capacity-no-slo", CAPACITY, ("s.yaml: no class has an slo",), S),
    Case("capacity-start-0", (*CAPACITY, "--start", "0"), ("capacity + flags: start:", "greater than 0"), SLO),
    Case("capacity-tolerance-2", (*CAPACITY, "--tolerance", "2"), ("capacity + flags: tolerance:",), SLO),
    Case("capacity-repeats-9", (*CAPACITY, "--repeats", "9"), ("capacity + flags: repeats:",), SLO),
    Case("capacity-refine-20", (*CAPACITY, "--refine", "20"), ("capacity + flags: refine:",), SLO),
    Case("capacity-start-above-max", (*CAPACITY, "--start", "50", "--max", "10"), ("capacity + flags", "must not exceed max"), SLO),
    Case("capacity-time-scale-0", ("capacity", "{t}/s.yaml", "--twin-time-scale", "0"), ("'--twin-time-scale'",), SLO),
    Case("capacity-output-yaml", (*CAPACITY, "-o", "yaml"), ("'--output'",), SLO),
    # -- run directories: compare, report, baseline ---------------------------------------------
    Case("compare-missing", ("compare", "{t}/a", "{t}/none"), ("none: no such run directory or baseline",), setup=runs()),
    Case("compare-not-a-run", ("compare", "{t}/a", "{t}/empty"), ("empty: not a run directory",), setup=runs(lambda t: (t / "empty").mkdir())),
    Case("compare-no-samples", ("compare", "{t}/a", "{t}/b"), ("b: incomplete run directory: no samples.parquet",), setup=runs(lambda t: (t / "b" / "samples.parquet").unlink())),
    Case("compare-killed-run", ("compare", "{t}/a", "{t}/b"), ("b: incomplete: loadgate run", "INCOMPLETE"), setup=runs(killed)),
    Case("compare-killed-run-in-a-side", ("compare", "{t}/a", "{t}"), ("b: incomplete", "INCOMPLETE"), setup=runs(killed)),
    Case("compare-bad-summary", ("compare", "{t}/a", "{t}/b"), ("b/traffic_summary.json: not valid JSON",), setup=runs(lambda t: (t / "b" / "traffic_summary.json").write_text("{"))),
    Case("compare-truncated-samples", ("compare", "{t}/a", "{t}/b"), ("b/samples.parquet: cannot read as loadgate samples",), setup=runs(lambda t: (t / "b" / "samples.parquet").write_bytes(b'PAR1\x00'))),
    Case("compare-bad-scenario", ("compare", "{t}/a", "{t}/b"), ("b/scenario.yaml", "malformed YAML"), setup=runs(lambda t: (t / "b" / "scenario.yaml").write_text('name: [\n'))),
    Case("compare-bad-stack", ("compare", "{t}/a", "{t}/b"), ("b/stack.json: not a loadgate stack record",), setup=runs(lambda t: (t / "b" / "stack.json").write_text("{"))),
    Case("compare-phase", ("compare", "{t}/a", "{t}/b", "--phase", "flood"), ("no phase flood (phases: steady)",), setup=runs()),
    Case("compare-floor", ("compare", "{t}/a", "{t}/b", "--floor", "200"), ("'--floor'",), setup=runs()),
    Case("compare-alpha", ("compare", "{t}/a", "{t}/b", "--alpha", "0.5"), ("'--alpha'",), setup=runs()),
    Case("compare-output-yaml", ("compare", "{t}/a", "{t}/b", "-o", "yaml"), ("'--output'",), setup=runs()),
    Case("compare-old-format-flag", ("compare", "{t}/a", "{t}/b", "--format", "json"), ("--format is now -o/--output",), setup=runs()),
    Case("compare-kinds", ("compare", "{t}/a", "{t}/g"), ("not comparable",), setup=runs(gate_run), stdout=True),
    Case("report-missing", ("report", "{t}/none"), ("none: not a run directory",)),
    Case("report-no-summary", ("report", "{t}/a"), ("a: a `loadgate run` directory has no summary.json",), setup=runs()),
    Case("report-bad-summary", ("report", "{t}/g"), ("g/summary.json: not valid JSON",), setup=lambda t: ((t / "g").mkdir(), (t / "g" / "summary.json").write_text("{"))),
    Case("report-summary-key", ("report", "{t}/g"), ("g/summary.json: gatez: unknown key",), setup=lambda t: ((t / "g").mkdir(), (t / "g" / "summary.json").write_text('{"run_id": "g", "scenario": "s", "stack": "twin", "gatez": []}'))),
    Case("report-truncated-samples", ("report", "{t}/g"), ("g/samples.parquet: cannot read as loadgate data",), setup=lambda t: (gate_run(t), (t / "g" / "samples.parquet").write_bytes(b'PAR1'))),
    Case("report-killed-without-summary", ("report", "{t}/b"), ("b: incomplete", "nothing to render"), setup=runs(killed)),
    Case("report-compare", ("report", "compare", "{t}/a", "{t}/b"), ("is now `loadgate compare",)),
    Case("baseline-bad-name", ("baseline", "save", "../x", "{t}/a", "--dir", "{t}/bl"), ("baseline name '../x'",), setup=runs()),
    Case("baseline-no-runs", ("baseline", "save", "rel"), ("Missing argument 'RUNS...'",)),
    Case("baseline-killed-run", ("baseline", "save", "rel", "{t}/b", "--dir", "{t}/bl"), ("b: incomplete", "INCOMPLETE"), setup=runs(killed)),
    Case("baseline-invalid-run", ("baseline", "save", "rel", "{t}/v", "--dir", "{t}/bl"), ("INVALID runs cannot be a baseline",), setup=runs(lambda t: __import__("synthetic_runs").write_run(t / "v", __import__("numpy").random.default_rng(2), seconds=12, valid=False))),
    Case("baseline-exists", ("baseline", "save", "rel", "{t}/a", "--dir", "{t}/bl"), ("a baseline of that name exists",), setup=runs(lambda t: (t / "bl" / "rel").mkdir(parents=True))),
    Case("baseline-list-bad-json", ("baseline", "list", "--dir", "{t}/bl"), ("bl/x/baseline.json: not a loadgate baseline: ",), setup=lambda t: ((t / "bl" / "x").mkdir(parents=True), (t / "bl" / "x" / "baseline.json").write_text("{"))),
    # -- lint -----------------------------------------------------------------------------------
    Case("lint-missing-dir", ("lint", "{t}/nomani"), ("nomani",)),
    Case("lint-output-yaml", ("lint", "{repo}/fixtures/k8s", "-o", "yaml"), ("'--output'",)),
    Case("lint-bad-kustomization", ("lint", "{t}/m"), ("m/kustomization.yaml: line", "malformed YAML"), setup=manifests("kustomization.yaml", '\nresources:', '\nresources: [')),
]
# fmt: on
# fmt: on
