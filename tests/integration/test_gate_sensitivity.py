"""The gate is right both ways: it passes the reference twin, and each gate FAILS against a twin
that lacks the mechanism it checks. Driven through the real plugin (a `pytest loadtests`
subprocess with --twin-override), asserting the verdicts written to summary.json. The gates, the
overrides that break each one and the figures that must catch it all come from the catalogue
(`loadgate.gate.catalogue`), so a new gate is covered here by its catalogue entry.

The Kubernetes path runs here too: `--stack kubernetes` against a twin serving the emulated
Kubernetes API (`boot_twin(..., kube_api=True)`), through KubernetesPlatform, Envoy's admin and
Prometheus. To keep `make test` within its budget each gate's reference runs once, on one kind:
the gates that act and read through the platform's API most (pod_kill deletes a pod, scale_up
follows the Deployment's replicas and the ScaledObject) on the Kubernetes path, the others on the
twin kind (no scale-up among them, so one boot serves all three); the balance gate's broken twin (a round-robin
Envoy) runs on the Kubernetes path too, so its access log is read from the Envoy pod's log.
`make gate` and bench/noise.py run every gate on the twin kind; docs/kubernetes.md records a run
of every gate on the Kubernetes path.

Noise: a figure the machine's load made untrustworthy is INVALID, not FAIL (loadgate.judge.trust).
The reference must then have no FAIL and every INVALID figure's value on its passing side; a
broken twin's catching figure must FAIL, or be INVALID with its value on the failing side —
never PASS. So the test proves the numbers, whatever the verdict's trust.
"""

from __future__ import annotations

import operator
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from loadgate.gate import catalogue
from loadgate.judge.verdict import Verdict
from loadgate.report.summary import read_summary
from loadgate.twin.boot import boot_twin, twin_spec

ROOT = Path(__file__).resolve().parents[2]
OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt, "==": operator.eq}
# Which kind runs each gate's reference (every gate exactly once) and its broken twin.
KUBERNETES_REFERENCE = ("pod_kill", "scale_up")
TWIN_REFERENCE = tuple(g for g in catalogue.ORDER if g not in KUBERNETES_REFERENCE)
# The balance gate's broken twin runs on the Kubernetes path (below); the others on the twin,
# two to a twin where the mechanisms are independent (neither gate's catching figures depend on
# the other's mechanism: readiness drop-out and the autoscaler; the breaker and pod
# replacement), which saves a pytest session and a twin boot each within make test's budget.
TWIN_BROKEN = (("readiness", "scale_up"), ("fail_fast", "pod_kill"))

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def run_gates(
    report_dir: Path,
    run_id: str,
    gates: tuple[str, ...],
    overrides=(),
    config=ROOT / "loadgate.yaml",
):
    tests = " or ".join(catalogue.get(g).test_name for g in gates)
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "loadtests"), "-p", "no:cacheprovider",
           "-q", "--config", str(config), "--report-dir", str(report_dir),
           "--run-id", run_id, "-k", tests]  # fmt: skip
    for o in overrides:
        cmd += ["--twin-override", o]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    summary = read_summary(report_dir / run_id)
    by_gate: dict[str, list[Verdict]] = {}
    for v in summary.gates:
        by_gate.setdefault(v.gate, []).append(v)
    return proc, summary, by_gate


def would_pass(v: Verdict) -> bool:
    """What the figure's value says, trusted or not: measured and on its passing side."""
    return v.value is not None and OPS[v.comparison](v.value, v.threshold)


def wrong_for_a_good_stack(verdicts: list[Verdict]) -> list[str]:
    """FAILs, and INVALID figures whose value would have failed."""
    return [
        v.message
        for v in verdicts
        if v.status == "FAIL" or (v.status == "INVALID" and not would_pass(v))
    ]


def assert_reference_passes(proc, summary, by_gate, name: str, gates: tuple[str, ...]) -> None:
    tail = proc.stdout[-3000:]
    assert set(by_gate) == set(gates), f"gates with verdicts: {sorted(by_gate)}\n{tail}"
    for gate in gates:
        wrong = wrong_for_a_good_stack(by_gate[gate])
        assert not wrong, f"{name} failed {gate}: {wrong}"
    assert summary.status in ("PASS", "INVALID"), tail
    assert proc.returncode in (0, 3), tail  # 3: some figure untrusted on a loaded machine
    if summary.status == "INVALID":
        print(f"{name}: INVALID figures (machine load): {summary.invalid_reason}")


def assert_caught(by_gate, gate: str, overrides) -> None:
    g = catalogue.get(gate)
    verdicts = [v for v in by_gate.get(gate, []) if v.figure in g.caught_by]
    assert verdicts, f"{gate}: no verdict for {sorted(g.caught_by)} with {overrides}"
    caught = [
        v for v in verdicts if v.status == "FAIL" or (v.status == "INVALID" and not would_pass(v))
    ]
    assert caught, f"{gate} did not catch {overrides}: " + "; ".join(v.message for v in verdicts)
    assert all(v.status != "PASS" for v in caught)


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("gate-reports")


@pytest.mark.timeout(900)
def test_reference_twin_passes_its_gates(reports):
    proc, summary, by_gate = run_gates(reports, "reference", TWIN_REFERENCE)
    assert_reference_passes(proc, summary, by_gate, "the reference twin", TWIN_REFERENCE)
    run = reports / "reference"
    for name in ("summary.json", "samples.parquet", "proxy.parquet", "timeline.parquet",
                 "junit.xml", "report.html"):  # fmt: skip
        assert (run / name).stat().st_size > 0, f"{name} missing from {run}"


def test_every_gate_has_a_broken_twin_here():
    covered = sorted([*(g for group in TWIN_BROKEN for g in group), "balance"])
    assert covered == sorted(catalogue.ORDER)


def overrides_of(gates: tuple[str, ...]) -> tuple[str, ...]:
    """Every gate's broken overrides, once each (two gates may share one)."""
    return tuple(dict.fromkeys(o for g in gates for o in catalogue.get(g).broken))


@pytest.mark.timeout(900)
@pytest.mark.parametrize("gates", TWIN_BROKEN, ids=["+".join(g) for g in TWIN_BROKEN])
def test_gates_fail_without_their_mechanisms(reports, gates):
    overrides = overrides_of(gates)
    proc, summary, by_gate = run_gates(reports, f"broken-{'+'.join(gates)}", gates, overrides)
    assert proc.returncode in (1, 3), f"pytest exit {proc.returncode}\n{proc.stdout[-3000:]}"
    for gate in gates:
        assert_caught(by_gate, gate, overrides)
    assert summary.status != "PASS"


# -- the Kubernetes path, against the twin's emulated Kubernetes API ---------------------------


def kubernetes_config(tmp: Path, twin) -> Path:
    """loadgate.yaml with stack.kind kubernetes and the `kubernetes:` block of this twin."""
    cfg = yaml.safe_load((ROOT / "loadgate.yaml").read_text())
    cfg["stack"] = {
        "kind": "kubernetes",
        "manifests": str(ROOT / "fixtures" / "k8s"),
        # a cluster is never restarted: wait out the scale-down (60 s x 0.2 window + 1 pod/6 s)
        "settle_timeout_s": 120,
    }
    for g in cfg["gates"].values():
        g["scenario"] = str(ROOT / g["scenario"])
    cfg["kubernetes"] = twin.kubernetes_block()
    path = tmp / "loadgate-kubernetes.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def cluster(tmp: Path, **overrides):
    """A twin that presents itself as a cluster, from the manifests as loadgate.yaml runs them."""
    spec = twin_spec(ROOT / "fixtures" / "k8s", time_scale=0.2, **overrides)
    return boot_twin(spec, tmp / "cluster", wait_metrics=True, kube_api=True)


@pytest.mark.timeout(1200)
def test_the_kubernetes_path_passes_its_gates(reports, tmp_path):
    with cluster(tmp_path) as twin:
        proc, summary, by_gate = run_gates(
            reports, "kubernetes", KUBERNETES_REFERENCE, config=kubernetes_config(tmp_path, twin)
        )
    assert summary.stack.startswith("kubernetes"), summary.stack
    assert_reference_passes(proc, summary, by_gate, "the kubernetes path", KUBERNETES_REFERENCE)
    proxy = reports / "kubernetes" / "proxy.parquet"
    assert proxy.stat().st_size > 0, "Envoy's access log came from the Envoy pod's log"


@pytest.mark.timeout(600)
def test_a_broken_envoy_config_fails_its_gate_on_the_kubernetes_path(reports, tmp_path):
    g = catalogue.get("balance")
    with cluster(tmp_path, lb="round_robin") as twin:
        proc, summary, by_gate = run_gates(
            reports, "kubernetes-rr", ("balance",), config=kubernetes_config(tmp_path, twin)
        )
    assert proc.returncode in (1, 3), proc.stdout[-3000:]
    assert_caught(by_gate, "balance", g.broken)
