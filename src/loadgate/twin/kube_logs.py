"""Pod logs (`GET .../pods/<name>/log`) from the twin's log files, with the kubelet's filters:
`sinceSeconds` / `sinceTime`, `tailLines`, `limitBytes`, `timestamps`.

The kubelet timestamps each line when the container writes it. The twin's files carry their own
times: an Envoy access log line is written when its request ends (`start` + `duration_ms`), a
model server line starts with Python logging's local `asctime`; a line without one (a traceback)
takes the time of the line before it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import deque
from collections.abc import Iterator
from pathlib import Path

_ACCESS = re.compile(rb'"start":\s*"?([0-9.]+)')
_DURATION = re.compile(rb'"duration_ms":\s*"?([0-9.]+)')
_ASCTIME = re.compile(rb"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}),(\d{3}) ")


def line_time(raw: bytes) -> float | None:
    """When a log line was written (epoch s), if the line says."""
    if m := _ACCESS.search(raw):
        d = _DURATION.search(raw)
        return float(m.group(1)) + (float(d.group(1)) / 1000 if d else 0.0)
    if m := _ASCTIME.match(raw):
        local = dt.datetime.strptime(m.group(1).decode(), "%Y-%m-%d %H:%M:%S")
        return local.timestamp() + int(m.group(2)) / 1000
    return None


def _rfc3339(t: float) -> bytes:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()


def log_lines(
    path: Path,
    since: float | None = None,
    tail: int | None = None,
    limit_bytes: int | None = None,
    timestamps: bool = False,
) -> Iterator[bytes]:
    """The file's lines as the log endpoint answers them (each ending in a newline)."""
    if not path.exists():
        return

    def picked() -> Iterator[bytes]:
        t = 0.0
        with path.open("rb") as f:
            for raw in f:
                raw = raw if raw.endswith(b"\n") else raw + b"\n"
                t = line_time(raw) or t
                if since is None or t >= since:
                    yield (_rfc3339(t) + b" " + raw) if timestamps else raw

    lines: Iterator[bytes] = picked() if tail is None else iter(deque(picked(), maxlen=tail))
    left = limit_bytes
    for out in lines:
        if left is not None:
            if left <= 0:
                return
            out = out[:left]
            left -= len(out)
        yield out
