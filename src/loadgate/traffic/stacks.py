"""Which stack a run drives, and `stack.json`, the run directory's record of it.

`open_stack` yields the gRPC target and, when loadgate can see the stack, its Platform: a given
`--target` (any stack, no platform), a Kubernetes cluster from loadgate.yaml's `kubernetes:`
block, or the local twin booted from fixtures/k8s with overrides (stopped afterwards).
`loadgate compare` reads stack.json to refuse comparing runs of different kinds of stack.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import ValidationError

from loadgate.config import StrictModel
from loadgate.errors import UserError
from loadgate.gate.config import TwinOverrides, parse_overrides
from loadgate.platform.base import Platform

if TYPE_CHECKING:
    import pandas as pd

    from loadgate.twin.stack import Twin

TWIN_MANIFESTS = Path("fixtures/k8s")
STACK_FILE = "stack.json"
StackKind = Literal["twin", "target", "kubernetes"]


class StackInfo(StrictModel):
    kind: StackKind
    target: str
    time_scale: float | None = None  # twin: every simulated duration is multiplied by it
    overrides: dict[str, str | float | int | bool] = {}  # twin overrides given (e.g. lb)
    description: str = ""

    def identity(self) -> str:
        """What two runs must share to be compared: the kind of stack and, for the twin, its
        time scale (which changes every figure by design). Everything else (a slower model, a
        different lb policy) is the change a comparison is for."""
        return self.kind + (f" time_scale={self.time_scale:g}" if self.time_scale else "")


def write_stack_info(out_dir: Path, info: StackInfo) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / STACK_FILE).write_text(info.model_dump_json(indent=2) + "\n")


def read_stack_info(out_dir: Path) -> StackInfo | None:
    path = out_dir / STACK_FILE
    if not path.exists():
        return None
    try:
        return StackInfo.model_validate(json.loads(path.read_text()))
    except (json.JSONDecodeError, ValidationError) as e:
        raise UserError(f"{path}: not a loadgate stack record ({str(e).splitlines()[0]})") from None


def twin_overrides(items: tuple[str, ...] | list[str], time_scale: float | None) -> TwinOverrides:
    """`--twin-override KEY=VALUE` items (the names of `loadgate twin up` flags) over a time
    scale flag."""
    data = {"time_scale": time_scale, **parse_overrides(items)}
    try:
        return TwinOverrides.model_validate({k: v for k, v in data.items() if v is not None})
    except ValidationError as e:
        first = e.errors()[0]
        key = ".".join(str(x) for x in first["loc"])
        raise UserError(f"--twin-override {key}: {first['msg']}") from None


@dataclass
class RunStack:
    target: str
    info: StackInfo
    platform: Platform | None
    twin: Twin | None = None  # the twin booted for this run (its Envoy access log, ...)


def write_proxy_records(access_log: Path, out_dir: Path, samples: pd.DataFrame) -> dict:
    """The twin's Envoy access log of this run as proxy.parquet, and how it joins the samples
    (each call's proxy record by request id)."""
    from loadgate.observe.envoy_access import AccessLogTail, join_proxy
    from loadgate.schema import write_proxy

    proxy = AccessLogTail(access_log).read()
    write_proxy(proxy, out_dir / "proxy.parquet")
    joined = join_proxy(samples, proxy)
    return {
        "records": len(proxy),
        "joined": int(joined["proxy_start"].notna().sum()),
        "flags": {str(k): int(v) for k, v in proxy["flags"].value_counts().items() if k},
    }


@contextlib.contextmanager
def open_stack(
    target: str | None,
    out_dir: Path,
    overrides: TwinOverrides,
    progress: Callable[[str], None],
    kubernetes_config: Path | None = None,
) -> Iterator[RunStack]:
    """The stack a run drives; a twin booted here is stopped when the block ends."""
    if kubernetes_config is not None:
        stack = _kubernetes(kubernetes_config, target)
        try:
            yield stack
        finally:
            stack.platform.close()
        return
    if target:
        yield RunStack(target, StackInfo(kind="target", target=target), None)
        return
    from loadgate.twin.boot import boot_twin, time_scale_note, twin_spec

    if not TWIN_MANIFESTS.is_dir():
        raise UserError(f"no --target given and {TWIN_MANIFESTS}/ (the twin's manifests) not found")
    given = overrides.model_dump(exclude_none=True, exclude_defaults=True)
    spec = twin_spec(TWIN_MANIFESTS, **overrides.model_dump())
    # what the description does not already say
    shown = ", ".join(
        f"{k}={v}" for k, v in given.items() if k not in ("time_scale", "no_autoscaler")
    )
    progress(
        "loadgate: no --target: starting the local twin ("
        + time_scale_note(spec.time_scale)
        + (f"; {shown}" if shown else "")
        + ")"
    )
    with boot_twin(spec, out_dir / "twin", progress=progress) as twin:
        info = StackInfo(
            kind="twin",
            target=twin.grpc_target,
            time_scale=spec.time_scale,
            overrides={k: v for k, v in given.items() if k != "time_scale"},
            description=f"twin from {TWIN_MANIFESTS}: {spec.replicas} pods, "
            f"{spec.envoy.lb_policy}, autoscaler {'on' if spec.autoscaler else 'off'}, "
            f"time scale {spec.time_scale:g}" + (f", {shown}" if shown else ""),
        )
        yield RunStack(twin.grpc_target, info, twin.platform(), twin)


def kubernetes_block(config: Path) -> dict:
    """The `kubernetes:` block of --kubernetes-config, checked before anything is written."""
    from loadgate.platform.kubernetes import config_block

    return config_block(config, "grpc_target, context, namespace")


def _kubernetes(config: Path, target: str | None) -> RunStack:
    from loadgate.platform.kubernetes import KubernetesPlatform

    plat = KubernetesPlatform.from_config(kubernetes_block(config), source=str(config))
    addr = target or plat.grpc_target
    info = StackInfo(
        kind="kubernetes",
        target=addr,
        description=f"kubernetes context {plat.context}, namespace {plat.namespace}",
    )
    return RunStack(addr, info, plat)
