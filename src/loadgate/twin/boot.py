"""The one way every command boots a twin: the manifests, the overrides, `Twin.up`.

    spec = twin_spec(Path("fixtures/k8s"), time_scale=0.2, lb="round_robin")
    with boot_twin(spec, run_dir, progress=print) as twin:
        ...

`loadgate gate`, `loadgate gameday`, `loadgate run` (without --target) and `loadgate capacity`
all come through here, so they boot the same stack from the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from loadgate.twin.manifests import apply_overrides, load_twin_spec
from loadgate.twin.spec import TwinSpec
from loadgate.twin.stack import Twin

# Every simulated duration x 0.2: a 2,000-token stream lasts ~8 s instead of ~40 s. The default
# of every command that boots a twin (loadgate.yaml's stack.twin.time_scale says the same).
DEFAULT_TIME_SCALE = 0.2


def time_scale_note(time_scale: float) -> str:
    """What a time scale means, in one line for the start of every run."""
    from loadgate.modelserver.latency import LatencyModel

    m = LatencyModel(time_scale=time_scale)
    long_s = m.prefill(512) + m.decode(2000)
    return (
        f"time scale {time_scale:g}: every simulated duration x {time_scale:g} "
        f"(a 2,000-token stream lasts ~{long_s:.0f} s)"
    )


def twin_spec(manifests: Path, **overrides: Any) -> TwinSpec:
    """The manifests' TwinSpec with overrides (`apply_overrides` keywords; None keeps a value)."""
    if overrides.get("time_scale") is None:
        overrides["time_scale"] = DEFAULT_TIME_SCALE
    return apply_overrides(load_twin_spec(manifests), **overrides)


def boot_twin(
    spec: TwinSpec,
    run_dir: Path | None,
    progress: Callable[[str], None] | None = None,
    *,
    wait_metrics: bool = False,
    kube_api: bool = False,
) -> Twin:
    """Boot the twin (a context manager: `with boot_twin(...) as twin`); with `wait_metrics`,
    also wait until Prometheus has Envoy's first samples; with `kube_api`, also serve the
    emulated Kubernetes API. Stops what it started on failure."""
    twin = Twin.up(spec, run_dir, progress, kube_api=kube_api)
    if wait_metrics:
        try:
            twin.wait_metrics()
        except BaseException:
            twin.down()
            raise
    return twin
