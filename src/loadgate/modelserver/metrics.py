"""Triton-named metrics kept as plain numbers and rendered in the Prometheus text format.

Plain attributes instead of prometheus_client objects: the hot path only does `+=` (one event
loop thread, no locks), and rendering happens once per scrape.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

# name -> (type, help); the order is the exposition order.
_FAMILIES: dict[str, tuple[str, str]] = {
    "nv_inference_request_success": ("counter", "Number of successful inference requests"),
    "nv_inference_request_failure": ("counter", "Number of failed inference requests"),
    "nv_inference_count": ("counter", "Number of inferences performed (batch items)"),
    "nv_inference_exec_count": ("counter", "Number of model executions (batches)"),
    "nv_inference_request_duration_us": ("counter", "Cumulative request duration in us"),
    "nv_inference_queue_duration_us": ("counter", "Cumulative time requests waited in queue in us"),
    "nv_inference_compute_infer_duration_us": ("counter", "Cumulative compute duration in us"),
    "nv_inference_pending_request_count": ("gauge", "Requests queued, not yet executing"),
    "loadgate_inference_executing_count": ("gauge", "Requests executing on the device"),
}
_ATTR = {
    name: name.removeprefix("nv_inference_").removeprefix("loadgate_inference_")
    for name in _FAMILIES
}


@dataclass
class ModelStats:
    request_success: int = 0
    request_failure: int = 0
    count: int = 0
    exec_count: int = 0
    request_duration_us: float = 0.0
    queue_duration_us: float = 0.0
    compute_infer_duration_us: float = 0.0
    pending_request_count: int = 0
    executing_count: int = 0


assert set(_ATTR.values()) == {f.name for f in fields(ModelStats)}


def render(stats: dict[str, ModelStats], version: str = "1") -> str:
    lines: list[str] = []
    for name, (kind, help_text) in _FAMILIES.items():
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        attr = _ATTR[name]
        for model, s in stats.items():
            value = getattr(s, attr)
            lines.append(f'{name}{{model="{model}",version="{version}"}} {value:.15g}')
    return "\n".join(lines) + "\n"
