"""The ModelStatistics RPC's answer, from the same `ModelStats` as /metrics (pure).

Field meanings follow Triton's statistics extension: `success` / `fail` count requests and sum
their durations; `queue` and `compute_*` count successful requests (so their counts equal the
success count); `inference_count` counts batch items, `execution_count` executions;
`batch_stats` has one entry per executed batch size.
"""

from __future__ import annotations

from tritonclient.grpc import service_pb2 as pb

from loadgate.modelserver.metrics import ModelStats


def model_statistics(name: str, version: str, s: ModelStats) -> pb.ModelStatistics:
    D = pb.StatisticDuration
    ok = s.request_success
    return pb.ModelStatistics(
        name=name,
        version=version,
        last_inference=s.last_inference_ms,
        inference_count=s.count,
        execution_count=s.exec_count,
        inference_stats=pb.InferStatistics(
            success=D(count=ok, ns=s.request_ns),
            fail=D(count=s.request_failure, ns=s.failure_ns),
            queue=D(count=ok, ns=s.queue_ns),
            compute_input=D(count=ok, ns=s.compute_input_ns),
            compute_infer=D(count=ok, ns=s.compute_infer_ns),
            compute_output=D(count=ok, ns=s.compute_output_ns),
        ),
        batch_stats=[
            pb.InferBatchStatistics(
                batch_size=size,
                compute_input=D(count=n, ns=0),
                compute_infer=D(count=n, ns=infer_ns),
                compute_output=D(count=n, ns=0),
            )
            for size, (n, infer_ns) in sorted(s.batches.items())
        ],
    )
