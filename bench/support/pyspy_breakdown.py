"""Where a generator process's CPU went: py-spy samples sorted into the costs that matter here.

    py-spy record --subprocesses -r 200 -f raw -o prof.txt -- .venv/bin/python bench/generator.py ...
    .venv/bin/python bench/support/pyspy_breakdown.py prof.txt [--process locust]

Each sample is charged to the first category its stack matches, from the innermost frame out
(so a condition wait inside grpcio's stream iterator counts as gevent's thread emulation, a
protobuf parse inside a token reader as parsing). Only samples of processes whose command line
contains --process (default: Locust's) are counted; py-spy leaves idle threads out.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

# (category, substrings of a frame), innermost match wins; first rule that matches a frame.
RULES = [
    (
        "protobuf parsing",
        ("_transform (grpc/_common.py", "FromString", "stream_message", "unary_message"),
    ),
    ("token reader (profile)", ("profiles.py",)),
    (
        "per-message Python (TTFT/ITL, figures)",
        (
            "users.py:_stream",
            "_stream (loadgate/traffic/users.py",
        ),
    ),
    ("HTTP/2 framing (loadgate h2)", ("h2_protocol.py", "hpack/")),
    (
        "grpcio stream iterator / call machinery",
        ("grpc/_channel.py", "grpc/_common.py", "grpc/_utilities", "grpc/_interceptor"),
    ),
    (
        "gevent thread emulation (locks, conditions)",
        (
            "gevent/_threading",
            "gevent/thread",
            "gevent/_semaphore",
            "threading.py",
            "gevent/lock",
            "gevent/event",
        ),
    ),
    ("socket I/O", ("gevent/_socketcommon", "gevent/_socket", "h2_client.py")),
    (
        "gevent hub (libev loop, switches)",
        ("gevent/hub.py", "gevent/_hub", "gevent/greenlet", "gevent/_greenlet"),
    ),
    (
        "rows, Locust events, shipping",
        ("recorder.py", "control.py", "_record", "locust/", "msgpack", "zmq"),
    ),
    ("numpy (gap figures)", ("numpy/", "gap_figures")),
]


STARTUP = "start-up (imports), left out"


def categorize(frames: list[str]) -> str:
    if any("importlib._bootstrap" in f for f in frames):
        return STARTUP
    for frame in reversed(frames):
        for name, needles in RULES:
            if any(n in frame for n in needles):
                return name
    return "other"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("raw", help="py-spy record -f raw output")
    ap.add_argument("--process", default="-m locust", help="count processes whose command has this")
    args = ap.parse_args()
    counts: Counter[str] = Counter()
    with open(args.raw) as f:
        lines = f.read().splitlines()
    for line in lines:
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")
        procs = [f for f in frames if f.startswith("process ")]
        if not procs or args.process not in procs[-1]:
            continue
        counts[categorize(frames[len(procs) :])] += int(n)
    startup = counts.pop(STARTUP, 0)
    total = sum(counts.values()) or 1
    print(f"{total} samples of processes matching {args.process!r} ({startup} at start-up)")
    for name, n in counts.most_common():
        print(f"{n / total:6.1%}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
