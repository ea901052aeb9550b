"""Per-model statistics counted the way Triton counts them, rendered as Prometheus metrics.

One `ModelStats` per model feeds both `/metrics` and the ModelStatistics RPC (`statistics`), so
the two can never disagree. As in Triton (core `InferenceStatsAggregator`):
- a success adds 1 to the success count, its batch items to the inference count, and its request,
  queue and compute durations; a failure adds 1 to the failure count of its reason and its
  duration to the failure time only;
- a request cancelled while it waits in the queue is a failure with reason CANCELED; one cancelled
  while it executes is a success (the backend ends it with a final response), timed until then;
- a request refused before it is scheduled (unknown input, wrong shape: INVALID_ARGUMENT) is not
  counted at all: Triton rejects it in `TRITONSERVER_ServerInferAsync`, before any statistics;
- executions (and per-batch-size figures) are counted when an execution ends.
Every duration of a request is taken on one clock at its end, so queue + compute <= request.
Plain integers (ns) instead of prometheus_client objects: the hot path only does `+=` on one
event loop thread, and rendering happens once per scrape.
"""

from __future__ import annotations

from dataclasses import dataclass, field

REASONS = ("REJECTED", "CANCELED", "BACKEND", "OTHER")  # Triton's failure reasons (label)


@dataclass
class ModelStats:
    request_success: int = 0
    failure: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    failure_ns: int = 0
    count: int = 0  # inferences of successful requests (batch items)
    exec_count: int = 0
    request_ns: int = 0  # successful requests only
    queue_ns: int = 0
    compute_input_ns: int = 0  # the simulation has no input copy: stays 0
    compute_infer_ns: int = 0
    compute_output_ns: int = 0
    batches: dict[int, list[int]] = field(default_factory=dict)  # size -> [executions, infer ns]
    last_inference_ms: int = 0  # epoch ms of the last request that ended
    pending_request_count: int = 0
    executing_count: int = 0

    @property
    def request_failure(self) -> int:
        return sum(self.failure.values())

    def success(self, items: int, request_ns: int, queue_ns: int, compute_ns: int) -> None:
        self.request_success += 1
        self.count += items
        self.request_ns += request_ns
        self.queue_ns += queue_ns
        self.compute_infer_ns += compute_ns

    def fail(self, reason: str, request_ns: int) -> None:
        self.failure[reason] += 1
        self.failure_ns += request_ns

    def executed(self, batch_size: int, compute_ns: int) -> None:
        self.exec_count += 1
        b = self.batches.setdefault(batch_size, [0, 0])
        b[0] += 1
        b[1] += compute_ns


# (name, type, help, ModelStats attribute); the order is the exposition order. Attributes in ns
# are rendered in microseconds, as Triton's *_duration_us; `failure` has one series per reason.
_FAMILIES = (
    ("nv_inference_request_success", "counter", "Number of successful inference requests, all batch sizes", "request_success"),
    ("nv_inference_request_failure", "counter", "Number of failed inference requests, all batch sizes", "failure"),
    ("nv_inference_count", "counter", "Number of inferences performed (batch items)", "count"),
    ("nv_inference_exec_count", "counter", "Number of model executions performed (batches)", "exec_count"),
    ("nv_inference_request_duration_us", "counter", "Cumulative inference request duration in microseconds", "request_ns"),
    ("nv_inference_queue_duration_us", "counter", "Cumulative inference queuing duration in microseconds", "queue_ns"),
    ("nv_inference_compute_input_duration_us", "counter", "Cumulative compute input duration in microseconds", "compute_input_ns"),
    ("nv_inference_compute_infer_duration_us", "counter", "Cumulative compute inference duration in microseconds", "compute_infer_ns"),
    ("nv_inference_compute_output_duration_us", "counter", "Cumulative inference compute output duration in microseconds", "compute_output_ns"),
    ("nv_inference_pending_request_count", "gauge", "Instantaneous number of pending requests awaiting execution per-model.", "pending_request_count"),
    ("loadgate_inference_executing_count", "gauge", "Requests executing on the simulated device", "executing_count"),
)  # fmt: skip


def _samples(s: ModelStats, attr: str) -> list[tuple[dict[str, str], float]]:
    value = getattr(s, attr)
    if attr == "failure":
        return [({"reason": r}, n) for r, n in value.items()]
    return [({}, value / 1000 if attr.endswith("_ns") else value)]


def render(stats: dict[str, ModelStats], version: str = "1") -> str:
    lines: list[str] = []
    for name, kind, help_text, attr in _FAMILIES:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for model, s in stats.items():
            for extra, value in _samples(s, attr):
                labels = {"model": model, **extra, "version": version}
                text = ",".join(f'{k}="{v}"' for k, v in labels.items())
                lines.append(f"{name}{{{text}}} {value:.15g}")
    return "\n".join(lines) + "\n"
