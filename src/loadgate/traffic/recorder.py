"""Sample rows: cheap buffering where calls end, columnar batches between processes, Parquet files.

Worker side: `RowBuffer.add` appends one tuple per finished call (no DataFrame, no dict) and
`take()` hands the rows over as columns (a dict of lists, which msgpack ships compactly in a Locust
custom message). Master side: `Collector` keeps Arrow record batches, writes new rows as small
live chunk files at most every `live_every` seconds and the whole run as samples.parquet at the
end. Files are written to a temporary name and renamed, so readers never see a partial file.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from loadgate.schema import SAMPLE_COLUMNS, SAMPLE_SCHEMA

LIVE_DIR = "live"
SAMPLES_FILE = "samples.parquet"
GENERATOR_FILE = "generator.json"
TOKEN_GAPS_FILE = "token_gaps.parquet"
LOAD_STARTED_FILE = "load_started"  # epoch s when the controller started the load

# Per-call inter-token gap figures (streams only, NaN otherwise). They are not part of the
# samples contract (yet): they travel with each row and land in a sidecar file whose rows line
# up one to one with samples.parquet.
EXTRA_SCHEMA = pa.schema([("itl_p50", pa.float64()), ("itl_max", pa.float64())])
ROW_SCHEMA = pa.schema(list(SAMPLE_SCHEMA) + list(EXTRA_SCHEMA))
# Column order of a row tuple: the contract's, then the extras.
ROW_FIELDS = tuple(SAMPLE_COLUMNS) + tuple(EXTRA_SCHEMA.names)
GAP_COLUMNS = ["intended", "worker", "cls", "itl_p50", "itl_max"]


class RowBuffer:
    """Rows of one generator process, waiting to be shipped."""

    __slots__ = ("rows", "worker", "total")

    def __init__(self, worker: str) -> None:
        self.rows: list[tuple] = []
        self.worker = worker
        self.total = 0

    def add(
        self,
        intended: float,
        start: float,
        first_byte: float,
        end: float,
        cls: str,
        model: str,
        status: str,
        served_by: str,
        tokens: int,
        nbytes: int,
        phase: str,
        request_id: str = "",
        itl_p50: float = math.nan,
        itl_max: float = math.nan,
        error: str = "",
    ) -> None:
        self.rows.append(
            (
                intended,
                start,
                first_byte,
                end,
                cls,
                model,
                status,
                served_by,
                tokens,
                nbytes,
                phase,
                self.worker,
                request_id,
                error,
                itl_p50,
                itl_max,
            )
        )
        self.total += 1

    def take(self) -> dict[str, list]:
        """Columns of every buffered row (and an empty buffer)."""
        rows, self.rows = self.rows, []
        return columns(rows)


def columns(rows: list[tuple]) -> dict[str, list]:
    if not rows:
        return {name: [] for name in ROW_FIELDS}
    return {name: list(col) for name, col in zip(ROW_FIELDS, zip(*rows, strict=True), strict=True)}


def _missing(field: pa.Field, n: int) -> list:
    return [""] * n if pa.types.is_string(field.type) else [math.nan] * n


def to_batch(cols: dict[str, Any]) -> pa.RecordBatch:
    """Columns -> batch of ROW_SCHEMA (a column a sender lacks is "" or NaN)."""
    n = len(cols["intended"])
    data = {f.name: cols[f.name] if f.name in cols else _missing(f, n) for f in ROW_SCHEMA}
    return pa.RecordBatch.from_pydict(data, schema=ROW_SCHEMA)


def _atomic_write(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


class Collector:
    """All rows of a run, gathered where the file is written (Locust's master or local runner)."""

    def __init__(self, out_dir: str | Path, live_every: float = 1.0) -> None:
        self.out_dir = Path(out_dir)
        self.live_dir = self.out_dir / LIVE_DIR
        self.live_dir.mkdir(parents=True, exist_ok=True)
        self.batches: list[pa.RecordBatch] = []
        self.live_from = 0  # index of the first batch not yet in a live chunk
        self.chunk_seq = 0
        self.live_every = live_every
        self.last_live = 0.0
        self.workers: dict[str, dict] = {}  # worker -> generator stats from its final message
        self.finals = 0
        self.written = False

    @property
    def rows(self) -> int:
        return sum(b.num_rows for b in self.batches)

    def add(self, cols: dict[str, Any]) -> None:
        batch = to_batch(cols)
        if batch.num_rows:
            self.batches.append(batch)

    def add_final(self, worker: str, cols: dict[str, Any], stats: dict) -> None:
        self.add(cols)
        self.workers[worker] = stats
        self.finals += 1

    def flush_live(self, force: bool = False) -> Path | None:
        """Write rows that arrived since the last chunk, at most every `live_every` s."""
        now = time.monotonic()
        if not force and now - self.last_live < self.live_every:
            return None
        self.last_live = now
        new = self.batches[self.live_from :]
        if not new:
            return None
        self.live_from = len(self.batches)
        path = self.live_dir / f"chunk-{self.chunk_seq:06d}.parquet"
        self.chunk_seq += 1
        table = pa.Table.from_batches(new, schema=ROW_SCHEMA).select(SAMPLE_SCHEMA.names)
        _atomic_write(table, path)
        return path

    def finish(self, extra: dict | None = None) -> Path:
        """samples.parquet (all rows, by intended send time) and generator.json."""
        self.flush_live(force=True)
        table = pa.Table.from_batches(self.batches, schema=ROW_SCHEMA)
        if table.num_rows:
            table = table.sort_by([("intended", "ascending"), ("worker", "ascending")])
        path = self.out_dir / SAMPLES_FILE
        _atomic_write(table.select(SAMPLE_SCHEMA.names), path)
        _atomic_write(table.select(GAP_COLUMNS), self.out_dir / TOKEN_GAPS_FILE)
        info = {"rows": table.num_rows, "workers": self.workers, **(extra or {})}
        gen = self.out_dir / GENERATOR_FILE
        gen.with_name(f".{gen.name}.tmp").write_text(json.dumps(info, indent=2, sort_keys=True))
        os.replace(gen.with_name(f".{gen.name}.tmp"), gen)
        self.written = True
        return path
