"""Envoy's access log: the proxy's own record of every request, one JSON line each.

`ACCESS_LOG_FORMAT` is the one definition of the line loadgate reads: the reference bootstrap
(fixtures/k8s/envoy-config.yaml) logs it to stdout (so on Kubernetes it is in the Envoy pods'
logs), and the twin writes it to `access.log` in its run directory. `parse_access_log` turns
lines into the PROXY contract (`loadgate.schema`), `AccessLogTail` reads a growing file
incrementally, and `join_proxy` puts the proxy's record beside the client's samples.

What the proxy says that the client cannot: when the request really reached the proxy and when
the proxy finished it (a CPU-starved client sees both late), which pod it chose, and why it
answered as it did (`UO` breaker overflow, `UH` no healthy upstream, `URX` retries exhausted,
`UC`/`UR` the upstream went away, `DC` the client went away).
"""

from __future__ import annotations

import json
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from loadgate.schema import PROXY_COLUMNS, empty_proxy

# Envoy command operators (docs: configuration/observability/access_log/usage). START_TIME with
# microseconds as epoch seconds; durations are whole milliseconds (Envoy's resolution here).
ACCESS_LOG_FORMAT: dict[str, str] = {
    "start": "%START_TIME(%s.%6f)%",
    "duration_ms": "%DURATION%",  # downstream request start -> last byte sent downstream
    "response_ms": "%RESPONSE_DURATION%",  # -> first byte from the upstream (first token)
    "upstream": "%UPSTREAM_HOST%",  # the pod chosen (also logged on overflow: chosen, not sent)
    "flags": "%RESPONSE_FLAGS%",
    "grpc_status": "%GRPC_STATUS(SNAKE_STRING)%",
    "http_status": "%RESPONSE_CODE%",
    "attempts": "%UPSTREAM_REQUEST_ATTEMPT_COUNT%",
    "upstream_ms": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
    "request_id": "%REQ(X-REQUEST-ID)%",
    "path": "%REQ(:PATH)%",
}
# The header loadgate's users send with a fresh id per call, so each sample row and its access
# log line can be joined. Envoy keeps a request's x-request-id unless it is an edge proxy that
# regenerates it (`use_remote_address: true` without `preserve_external_request_id`).
REQUEST_ID_HEADER = "x-request-id"

# Response flags (Envoy's short names) loadgate gives a meaning to.
OVERFLOW = "UO"  # circuit breaker overflow: a local reply, never sent upstream
NO_HEALTHY = "UH"
# Flags of a request that never reached a pod: its `upstream` (if any) was chosen, not used.
NOT_SENT = ("UO", "UH", "NR", "UF", "URX")


def _num(v: object) -> float:
    """Envoy logs numbers as numbers, absent values as null or '-'; header values as strings."""
    if v is None or v == "-" or v == "":
        return math.nan
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _text(v: object) -> str:
    return "" if v is None or v == "-" else str(v)


def parse_access_log(lines: list[str] | list[bytes]) -> tuple[pd.DataFrame, int]:
    """Access log lines -> (PROXY frame, number of lines that were not loadgate's JSON)."""
    recs: dict[str, list] = {c: [] for c in PROXY_COLUMNS}
    bad = 0
    for raw in lines:
        line = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        line = line.strip()
        if not line:
            continue
        try:
            d = json.loads(line)
            start = float(d["start"])
        except (ValueError, KeyError, TypeError):
            bad += 1
            continue
        dur = _num(d.get("duration_ms"))
        resp = _num(d.get("response_ms"))
        recs["request_id"].append(_text(d.get("request_id")))
        recs["start"].append(start)
        recs["end"].append(start + dur / 1000.0)
        recs["first_byte"].append(start + resp / 1000.0)
        recs["upstream"].append(_text(d.get("upstream")))
        recs["flags"].append(_text(d.get("flags")))
        recs["grpc_status"].append(_text(d.get("grpc_status")))
        recs["http_status"].append(_num(d.get("http_status")))
        recs["attempts"].append(_num(d.get("attempts")))
        recs["upstream_ms"].append(_num(d.get("upstream_ms")))
        recs["path"].append(_text(d.get("path")))
    if not recs["start"]:
        return empty_proxy(), bad
    return pd.DataFrame(recs, columns=PROXY_COLUMNS), bad


class AccessLogTail:
    """Reads the lines appended to a growing access log since the last read (whole lines only:
    a line Envoy has half-flushed is kept for the next read)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.offset = 0
        self.bad_lines = 0

    def skip_to_end(self) -> None:
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def read(self) -> pd.DataFrame:
        if not self.path.exists():
            return empty_proxy()
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        cut = data.rfind(b"\n") + 1
        self.offset += cut
        frame, bad = parse_access_log(data[:cut].splitlines())
        self.bad_lines += bad
        return frame


class ProxyLog(ABC):
    """Where a run reads Envoy's access log from: `mark()` before the load, `read_settled()`
    after it (every record since the mark, once the log has caught up)."""

    @abstractmethod
    def mark(self) -> None: ...

    @abstractmethod
    def read_settled(self) -> pd.DataFrame: ...


class FileProxyLog(ProxyLog):
    """A log file Envoy appends to (the twin's). Envoy flushes it every `flush_s`: the records
    are complete when two reads a flush interval and a half apart bring nothing new."""

    def __init__(self, path: Path, flush_s: float = 0.1, timeout_s: float = 5.0) -> None:
        self.tail = AccessLogTail(path)
        self.flush_s, self.timeout_s = flush_s, timeout_s

    def mark(self) -> None:
        self.tail.skip_to_end()

    def read_settled(self) -> pd.DataFrame:
        frames, quiet = [], 0
        deadline = time.monotonic() + self.timeout_s
        while quiet < 2 and time.monotonic() < deadline:
            frame = self.tail.read()
            quiet = 0 if len(frame) else quiet + 1
            if len(frame):
                frames.append(frame)
            time.sleep(1.5 * self.flush_s)
        return pd.concat(frames, ignore_index=True) if frames else empty_proxy()


class PodLogProxyLog(ProxyLog):
    """The Envoy pods' logs through the Kubernetes API (one JSON access log line per request on
    stdout, mixed with anything else Envoy prints): `fetch(since_epoch_s)` returns the lines of
    every Envoy pod since then (at least); records are kept from the mark on (by the proxy's
    own start time)."""

    def __init__(self, fetch: Callable[[float], list[str]]) -> None:
        self.fetch = fetch
        self.since = time.time()

    def mark(self) -> None:
        self.since = time.time()

    def read_settled(self) -> pd.DataFrame:
        frame, _other = parse_access_log(self.fetch(self.since - 1.0))
        frame = frame[frame["start"] >= self.since]
        return frame.sort_values("start", kind="stable").reset_index(drop=True)


def sent_upstream(proxy: pd.DataFrame) -> pd.Series:
    """Rows whose request the proxy really sent to a pod (not a local reply like overflow)."""
    flags = proxy["flags"].fillna("")
    local = np.zeros(len(proxy), dtype=bool)
    for f in NOT_SENT:
        local |= flags.str.contains(f, regex=False).to_numpy()
    return pd.Series(~local & (proxy["upstream"] != ""), index=proxy.index)


def join_proxy(samples: pd.DataFrame, proxy: pd.DataFrame) -> pd.DataFrame:
    """Samples with the proxy's record of each call beside the client's: columns
    `proxy_start`, `proxy_end`, `proxy_first_byte`, `proxy_upstream`, `proxy_flags`,
    `proxy_grpc_status`, `proxy_attempts` (NaN / "" for calls the proxy never logged)."""
    keep = ["request_id", "start", "end", "first_byte", "upstream", "flags", "grpc_status"]
    p = proxy[proxy["request_id"] != ""][[*keep, "attempts"]]
    p = p.drop_duplicates("request_id", keep="last")
    p = p.rename(columns={c: f"proxy_{c}" for c in p.columns if c != "request_id"})
    out = samples.merge(p, on="request_id", how="left", validate="many_to_one")
    for c in ("proxy_upstream", "proxy_flags", "proxy_grpc_status"):
        out[c] = out[c].fillna("")
    return out
