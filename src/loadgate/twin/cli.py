"""`loadgate twin up | status | down`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import yaml

from loadgate.errors import UserError
from loadgate.flags import NON_NEGATIVE, POSITIVE
from loadgate.output import output_option
from loadgate.twin.daemon import running_twin, serve

STATE_DIR = Path(".loadgate/twin")
DETACH_TIMEOUT_S = 90.0
DOWN_TIMEOUT_S = 30.0

_state_opt = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=STATE_DIR,
    show_default=True,
    help="Where a running twin records its endpoints and pid.",
)


@click.group()
def twin() -> None:
    """Boot, inspect and stop the local twin (Envoy + Prometheus + model pods + autoscaler)."""


def _echo(msg: str) -> None:
    click.echo(f"loadgate: {msg}", err=True)


@twin.command()
@click.option("--detach", is_flag=True, help="Run in the background; stop with `twin down`.")
@click.option(
    "--manifests",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("fixtures/k8s"),
    show_default=True,
    help="Kubernetes manifests the twin takes its numbers from.",
)
@click.option(
    "--lb",
    type=click.Choice(["least_request", "round_robin", "random"]),
    default=None,
    help="Set the Envoy cluster's lb_policy.",
)
@click.option("--replicas", type=click.IntRange(0), default=None, help="Initial model pods.")
@click.option(
    "--max-requests",
    type=click.IntRange(0),
    default=None,
    help="Envoy breaker's max_requests; 0 = none.",
)
@click.option(
    "--health-check-interval", type=POSITIVE, default=None, help="Envoy health-check interval, s."
)
@click.option(
    "--num-retries", type=click.IntRange(0), default=None, help="Envoy route retries (0 = none)."
)
@click.option("--no-autoscaler", is_flag=True, help="Do not run the KEDA/HPA emulation.")
@click.option(
    "--kube-api",
    is_flag=True,
    help="Also serve the emulated Kubernetes API from the twin's state, with a kubeconfig.",
)
@click.option(
    "--ready-max-queue", type=click.IntRange(0), default=None, help="Readiness limit; 0 = off."
)
@click.option(
    "--restart-delay", type=NON_NEGATIVE, default=None, help="Simulated s to replace a pod."
)
@click.option(
    "--time-scale",
    type=POSITIVE,
    default=None,
    help="Simulated durations x this (default 0.2, as loadgate.yaml; 1 = real model timings).",
)
@click.option(
    "--token-chunk",
    type=click.IntRange(1),
    default=None,
    help="Tokens per stream message (default 8).",
)
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Configs, logs and TSDB (default: <state-dir>/runs/<time>).",
)
@_state_opt
def up(
    detach: bool,
    manifests: Path,
    lb: str | None,
    replicas: int | None,
    max_requests: int | None,
    health_check_interval: float | None,
    num_retries: int | None,
    no_autoscaler: bool,
    kube_api: bool,
    ready_max_queue: int | None,
    restart_delay: float | None,
    time_scale: float | None,
    token_chunk: int | None,
    run_dir: Path | None,
    state_dir: Path,
) -> None:
    """Boot the twin from the manifests (with overrides) and print its endpoints."""
    from loadgate.twin.boot import time_scale_note, twin_spec

    other = running_twin(state_dir)
    if other is not None:
        raise UserError(
            f"a twin is already running (pid {other['pid']}, gRPC {other.get('grpc_target')}); "
            "stop it with `loadgate twin down`"
        )
    spec = twin_spec(
        manifests,
        lb=lb,
        replicas=replicas,
        max_requests=max_requests,
        health_check_interval=health_check_interval,
        num_retries=num_retries,
        no_autoscaler=no_autoscaler,
        ready_max_queue=ready_max_queue,
        restart_delay=restart_delay,
        time_scale=time_scale,
        token_chunk=token_chunk,
    )
    _echo(time_scale_note(spec.time_scale))
    if run_dir is None:
        run_dir = state_dir / "runs" / time.strftime("%Y%m%d-%H%M%S")
    run_dir = run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    if detach:
        _up_detached(spec.model_dump_json(), run_dir, state_dir, kube_api)
    else:
        serve(spec, run_dir, state_dir, _echo, on_up=_print_endpoints, kube_api=kube_api)


def _print_endpoints(state: dict) -> None:
    click.echo(f"gRPC target:     {state['grpc_target']}")
    click.echo(f"Prometheus:      {state['prometheus_url']}")
    click.echo(f"control API:     {state['control_url']}")
    click.echo(f"Envoy admin:     {state['envoy_admin_url']}  (Envoy {state['envoy_version']})")
    click.echo(f"run dir:         {state['run_dir']}")
    if state.get("kubernetes"):
        click.echo(f"Kubernetes API:  {state['kube_api_url']}  (emulated; docs/twin.md)")
        click.echo(f"kubeconfig:      {state['kubeconfig']}  (context {state['kube_context']})")
        click.echo("loadgate.yaml, to drive this twin as a cluster (--stack kubernetes):")
        block = yaml.safe_dump({"kubernetes": state["kubernetes"]}, sort_keys=False)
        click.echo("  " + block.rstrip().replace("\n", "\n  "))
    if "pid" in state and state["pid"] != os.getpid():
        click.echo(f"pid:             {state['pid']}  (stop with `loadgate twin down`)")
    else:
        click.echo("Press Ctrl-C to stop.")


def _up_detached(spec_json: str, run_dir: Path, state_dir: Path, kube_api: bool) -> None:
    spec_path = run_dir / "spec.json"
    spec_path.write_text(spec_json)
    log_path = run_dir / "daemon.log"
    cmd = [sys.executable, "-m", "loadgate.twin.daemon", "--spec", str(spec_path)]
    cmd += ["--run-dir", str(run_dir), "--state-dir", str(state_dir.resolve())]
    cmd += ["--kube-api"] if kube_api else []
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, close_fds=True,
        )  # fmt: skip
    shown = 0
    deadline = time.monotonic() + DETACH_TIMEOUT_S
    while True:
        lines = log_path.read_text(errors="replace").splitlines()
        for line in lines[shown:]:
            if not line.startswith("loadgate: error:"):
                click.echo(line, err=True)
        shown = len(lines)
        state = running_twin(state_dir)
        if state is not None and state.get("pid") == proc.pid:
            _print_endpoints(state)
            return
        if proc.poll() is not None:
            errors = [ln for ln in lines if ln.startswith("loadgate: error:")]
            msg = (
                errors[-1].removeprefix("loadgate: error: ")
                if errors
                else (f"twin daemon exited with code {proc.returncode}; see {log_path}")
            )
            raise UserError(msg)
        if time.monotonic() > deadline:
            proc.terminate()
            raise UserError(f"twin not up after {DETACH_TIMEOUT_S:.0f}s; see {log_path}")
        time.sleep(0.2)


@twin.command()
@_state_opt
@output_option()
def status(state_dir: Path, output: str) -> None:
    """Pods, readiness, queue and replicas of the running twin (exit 0; with no twin running it
    says so, as `twin down` does)."""
    from loadgate.platform.twin import TwinPlatform

    state = running_twin(state_dir)
    if state is None:
        if output == "json":
            click.echo(json.dumps({"running": False, "state_dir": str(state_dir)}))
        else:
            _echo(f"no twin running (no live state in {state_dir})")
        return
    p = TwinPlatform(state["control_url"], timeout=5)
    records, reps, so = p.pod_records(), p.replicas(), p.scaled_object()
    if output == "json":
        out = {"running": True, "state": state, "replicas": reps.__dict__, "pods": records}
        click.echo(json.dumps({**out, "scaledobject": so}, indent=1, default=str))
        return
    click.echo(f"twin pid {state['pid']}  gRPC {state['grpc_target']}  "
               f"Prometheus {state['prometheus_url']}")  # fmt: skip
    click.echo(f"replicas: {reps.ready} ready / {reps.spec} desired")
    click.echo(f"{'POD':<34} {'ADDRESS':<22} {'PHASE':<12} {'READY':<6} {'QUEUE':>5}  "
               f"{'ENVOY HEALTH':<24} RQ_ACTIVE")  # fmt: skip
    for pod in sorted(records, key=lambda x: x["name"]):
        queue = "-" if pod.get("queue") is None else str(pod["queue"])
        health = pod.get("envoy_health") or "(not in Envoy)"
        rq = "-" if pod.get("envoy_rq_active") is None else str(pod["envoy_rq_active"])
        click.echo(f"{pod['name']:<34} {pod['address']:<22} {pod['phase']:<12} "
                   f"{'yes' if pod['ready'] else 'no':<6} {queue:>5}  {health:<24} {rq}")  # fmt: skip
    last = (so.get("status") or {}).get("last_decision")
    if so.get("spec") and last:
        click.echo(f"autoscaler: metric {last.get('metric_value')} -> desired "
                   f"{last.get('desired')}, applied {last.get('applied')} ({last.get('reason')})")  # fmt: skip
    elif not so.get("spec"):
        click.echo("autoscaler: off")


@twin.command()
@_state_opt
def down(state_dir: Path) -> None:
    """Stop the running twin and every process it started."""
    import psutil

    state = running_twin(state_dir)
    if state is None:
        _echo(f"no twin running (no live state in {state_dir})")
        return
    pid = int(state["pid"])
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    os.kill(pid, signal.SIGTERM)
    _echo(f"stopping twin (pid {pid}, {len(children)} child processes)")
    procs = [psutil.Process(pid), *children] if psutil.pid_exists(pid) else children
    gone, alive = psutil.wait_procs(procs, timeout=DOWN_TIMEOUT_S)
    for proc in alive:  # only processes this twin started
        proc.kill()
    psutil.wait_procs(alive, timeout=5)
    (state_dir / "state.json").unlink(missing_ok=True)
    _echo(f"twin stopped ({len(gone)} exited, {len(alive)} killed)")
