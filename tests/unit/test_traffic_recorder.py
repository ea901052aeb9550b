"""Rows: the contract's columns and types, batching, live chunks, the final file."""

import math
import time

import pyarrow.parquet as pq

from loadgate.schema import SAMPLE_COLUMNS, SAMPLE_SCHEMA, read_samples
from loadgate.traffic.live import read_live, read_recent
from loadgate.traffic.recorder import Collector, RowBuffer


def fill(buf, n, t0, status="OK"):
    for i in range(n):
        t = t0 + i * 0.01
        buf.add(
            t, t + 0.001, t + 0.01, t + 0.02, "cv", "cv", status, "10.0.0.1:8001", 0, 4000, "steady"
        )


def test_take_ships_columns_in_contract_order_and_empties_the_buffer():
    buf = RowBuffer("w1")
    fill(buf, 3, 100.0)
    cols = buf.take()
    assert list(cols)[: len(SAMPLE_COLUMNS)] == SAMPLE_COLUMNS
    assert cols["worker"] == ["w1"] * 3 and cols["intended"][0] == 100.0
    assert buf.rows == [] and buf.total == 3
    assert all(len(v) == 0 for v in buf.take().values())


def test_collector_writes_live_chunks_and_a_sorted_contract_file(tmp_path):
    col = Collector(tmp_path, live_every=0)
    a, b = RowBuffer("w1"), RowBuffer("w2")
    now = time.time()
    fill(a, 5, now + 1)
    fill(b, 4, now)
    col.add(a.take())
    assert col.flush_live() is not None
    col.add_final("w2", b.take(), {"sent": 4, "dropped": 0})
    path = col.finish({"scenario": "t"})
    assert pq.read_schema(path).equals(SAMPLE_SCHEMA, check_metadata=False)
    df = read_samples(path)
    assert len(df) == 9 and df["intended"].is_monotonic_increasing
    assert set(df["worker"]) == {"w1", "w2"} and col.finals == 1
    assert len(read_live(tmp_path)) == 9  # every row also reached a live chunk
    assert len(list((tmp_path / "live").glob("chunk-*.parquet"))) == 2
    assert not list(tmp_path.rglob(".*.tmp"))


def test_nan_first_byte_survives(tmp_path):
    col = Collector(tmp_path)
    buf = RowBuffer("w")
    buf.add(1.0, 1.0, math.nan, 2.0, "llm", "llm", "UNAVAILABLE", "", 0, 0, "flood")
    col.add(buf.take())
    df = read_samples(col.finish())
    assert math.isnan(df["first_byte"][0]) and df["status"][0] == "UNAVAILABLE"


def test_read_recent_keeps_only_the_window(tmp_path):
    col = Collector(tmp_path, live_every=0)
    buf = RowBuffer("w")
    now = time.time()
    fill(buf, 10, now - 30)  # ended ~30 s ago
    fill(buf, 10, now - 2)  # ended ~2 s ago
    col.add(buf.take())
    col.flush_live()
    assert len(read_recent(tmp_path, 5, now=now)) == 10
    assert len(read_recent(tmp_path, 60, now=now)) == 20
    assert read_recent(tmp_path / "nothing", 5).empty


def test_token_gap_sidecar_lines_up_with_the_samples(tmp_path):
    col = Collector(tmp_path)
    buf = RowBuffer("w")
    buf.add(2.0, 2.0, 2.1, 3.0, "llm", "llm", "OK", "p", 50, 10, "s", "rid-1", 0.02, 0.05)
    buf.add(1.0, 1.0, 1.1, 2.0, "cv", "cv", "OK", "p", 0, 10, "s")
    col.add(buf.take())
    samples = read_samples(col.finish())
    gaps = pq.read_table(tmp_path / "token_gaps.parquet").to_pandas()
    assert list(samples["cls"]) == list(gaps["cls"]) == ["cv", "llm"]
    assert math.isnan(gaps["itl_p50"][0]) and gaps["itl_max"][1] == 0.05
    assert "itl_p50" not in samples.columns  # the contract stays exact


def test_error_text_travels_with_its_row(tmp_path):
    col = Collector(tmp_path)
    buf = RowBuffer("w")
    buf.add(1.0, 1.0, math.nan, 1.1, "llm", "llm", "UNKNOWN", "", 0, 0, "s", error="bad input")
    buf.add(2.0, 2.0, 2.1, 3.0, "llm", "llm", "OK", "p", 50, 10, "s")
    cols = buf.take()
    col.add(cols)
    old = {k: v for k, v in cols.items() if k != "error"}  # a sender without the column
    col.add(old)
    df = read_samples(col.finish())
    assert sorted(df["error"]) == ["", "", "", "bad input"]
    assert df.loc[df["status"] == "UNKNOWN", "error"].tolist() == ["bad input", ""]
