"""Rows of a run that is still going: the small Parquet chunks the collector writes every second.

Chaos probes (success rate or p99 over the last N seconds) and progress lines read them; they
never talk to Locust. Chunks are renamed into place whole, so a reader never sees half a file.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from loadgate.schema import SAMPLE_SCHEMA, empty_samples
from loadgate.traffic.recorder import LIVE_DIR

# Rows reach a chunk at most ~2 s after their call ended (1 s shipping + 1 s flush); a chunk
# older than the window by more than this cannot hold rows inside the window.
_SLACK_S = 5.0


def _chunks(out_dir: str | Path) -> list[Path]:
    d = Path(out_dir) / LIVE_DIR
    return sorted(d.glob("chunk-*.parquet")) if d.is_dir() else []


def _read(paths: list[Path]) -> pd.DataFrame:
    tables = []
    for p in paths:
        try:
            tables.append(pq.read_table(p, schema=SAMPLE_SCHEMA))
        except (FileNotFoundError, pa.ArrowInvalid):
            continue  # removed or replaced under us; the next read sees it
    if not tables:
        return empty_samples()
    return pa.concat_tables(tables).to_pandas()


def read_recent(out_dir: str | Path, window_s: float, now: float | None = None) -> pd.DataFrame:
    """Rows of calls that ended within the last `window_s` seconds (epoch clock)."""
    now = time.time() if now is None else now
    horizon = now - window_s
    recent = []
    for p in reversed(_chunks(out_dir)):
        try:
            mtime = p.stat().st_mtime
        except FileNotFoundError:
            continue
        if mtime < horizon - _SLACK_S:
            break
        recent.append(p)
    df = _read(list(reversed(recent)))
    return df[df["end"] >= horizon].reset_index(drop=True)


def read_live(out_dir: str | Path) -> pd.DataFrame:
    """Every row written so far (all chunks)."""
    return _read(_chunks(out_dir))
