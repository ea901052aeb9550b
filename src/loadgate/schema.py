"""Data contracts shared by every stage (DESIGN.md section 7).

`samples`: one row per request sent. `timeline`: every time series and event of a run. Traffic
writes them, the judge and the report read them; this module is the single place that says what
the columns are, so a change to the contract is one edit here.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pyarrow as pa

# Latency is measured from `intended` (the scheduled send), so queueing in the generator or the
# stack is never hidden (coordinated omission). `start - intended` is the generator's own lag.
SAMPLE_SCHEMA = pa.schema(
    [
        ("intended", pa.float64()),  # scheduled send, epoch s (== start for closed-loop users)
        ("start", pa.float64()),  # actual send, epoch s
        ("first_byte", pa.float64()),  # first response / first token, epoch s; NaN if none
        ("end", pa.float64()),  # last byte or error, epoch s
        ("cls", pa.string()),  # traffic class name from the scenario (e.g. llm-short, cv)
        ("model", pa.string()),  # model name sent in the request
        ("status", pa.string()),  # gRPC status code name; "OK" on success
        ("served_by", pa.string()),  # pod that served it, from the proxy's header; "" if unknown
        ("tokens", pa.int64()),  # tokens received (streams), 0 for CV
        ("bytes", pa.int64()),  # response payload bytes
        ("phase", pa.string()),  # scenario phase name (warmup, steady, flood, ...)
        ("worker", pa.string()),  # generator process that sent it
        ("request_id", pa.string()),  # x-request-id sent with the call: joins the proxy's record
        ("error", pa.string()),  # why a call failed, in the server's or gRPC's words; "" if OK
    ]
)
SAMPLE_COLUMNS = [f.name for f in SAMPLE_SCHEMA]

# One row per request the proxy logged (Envoy's access log, `loadgate.observe.envoy_access`):
# the stack's own record, beside the client's samples.
PROXY_SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),  # the x-request-id the client sent; "" if none
        ("start", pa.float64()),  # the proxy received the request, epoch s
        ("end", pa.float64()),  # the proxy sent the last byte downstream, epoch s (ms resolution)
        ("first_byte", pa.float64()),  # first byte from the pod (first token); NaN if none
        ("upstream", pa.string()),  # pod chosen, ip:port ("" if none)
        ("flags", pa.string()),  # Envoy response flags: UO overflow, UH no healthy pod, ...
        ("grpc_status", pa.string()),  # gRPC status name as the proxy saw it
        ("http_status", pa.float64()),
        ("attempts", pa.float64()),  # upstream attempts (retries + 1)
        ("upstream_ms", pa.float64()),  # x-envoy-upstream-service-time
        ("path", pa.string()),  # gRPC method path
    ]
)
PROXY_COLUMNS = [f.name for f in PROXY_SCHEMA]

# One row per observation: Prometheus series, replicas, readiness, autoscaler decisions, chaos
# events. `labels` is a JSON object (sorted keys) so the file stays a flat table.
TIMELINE_SCHEMA = pa.schema(
    [
        ("time", pa.float64()),  # epoch s
        ("source", pa.string()),  # prometheus | twin | autoscaler | chaos | kubernetes | ...
        ("metric", pa.string()),  # series or event name
        ("labels", pa.string()),  # JSON object
        ("value", pa.float64()),
    ]
)
TIMELINE_COLUMNS = [f.name for f in TIMELINE_SCHEMA]


def encode_labels(labels: dict[str, Any] | None) -> str:
    return json.dumps(labels or {}, sort_keys=True, separators=(",", ":"))


def decode_labels(text: str) -> dict[str, Any]:
    return json.loads(text) if text else {}


def _conform(df: pd.DataFrame, schema: pa.Schema, what: str) -> pd.DataFrame:
    missing = [c for c in schema.names if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lack columns {missing}")
    return df[schema.names]


def empty_samples() -> pd.DataFrame:
    return SAMPLE_SCHEMA.empty_table().to_pandas()


def empty_timeline() -> pd.DataFrame:
    return TIMELINE_SCHEMA.empty_table().to_pandas()


def empty_proxy() -> pd.DataFrame:
    return PROXY_SCHEMA.empty_table().to_pandas()


def samples_table(df: pd.DataFrame) -> pa.Table:
    """DataFrame -> Arrow table with exactly the contract's columns and types."""
    return pa.Table.from_pandas(
        _conform(df, SAMPLE_SCHEMA, "samples"), schema=SAMPLE_SCHEMA, preserve_index=False
    )


def timeline_table(df: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(
        _conform(df, TIMELINE_SCHEMA, "timeline"), schema=TIMELINE_SCHEMA, preserve_index=False
    )


def write_samples(df: pd.DataFrame, path) -> None:
    import pyarrow.parquet as pq

    pq.write_table(samples_table(df), path)


def write_timeline(df: pd.DataFrame, path) -> None:
    import pyarrow.parquet as pq

    pq.write_table(timeline_table(df), path)


def write_proxy(df: pd.DataFrame, path) -> None:
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(
        _conform(df, PROXY_SCHEMA, "proxy records"), schema=PROXY_SCHEMA, preserve_index=False
    )
    pq.write_table(table, path)


def read_proxy(path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    return pq.read_table(path, schema=PROXY_SCHEMA).to_pandas()


def read_samples(path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    df = pq.read_table(path, schema=SAMPLE_SCHEMA).to_pandas()
    df["error"] = df["error"].fillna("")  # files written before the column existed
    return df


def read_timeline(path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    return pq.read_table(path, schema=TIMELINE_SCHEMA).to_pandas()
