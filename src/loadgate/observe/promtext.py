"""Prometheus text exposition format -> flat samples (name, labels, value).

Envoy's `/stats/prometheus`, Prometheus' own exporters and Triton's `/metrics` all speak it. Names are
kept exactly as printed, as Prometheus stores them: `prometheus_client`'s parser renames
counters to `<name>_total`, which would merge Envoy's `envoy_cluster_upstream_rq{code}` into
`envoy_cluster_upstream_rq_total`, so this small parser is used instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from loadgate.errors import UserError

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,)?')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def _unescape(v: str) -> str:
    return re.sub(r'\\[\\"n]', lambda m: _UNESCAPE[m.group(0)], v)


def parse_line(line: str) -> Sample | None:
    """One exposition line; None for blank and comment lines. ValueError when malformed."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    m = _NAME.match(line)
    if not m:
        raise ValueError(f"bad metric name in {line[:80]!r}")
    name, pos = m.group(0), m.end()
    labels: dict[str, str] = {}
    if pos < len(line) and line[pos] == "{":
        pos += 1
        while True:
            if line[pos:].lstrip().startswith("}"):
                pos = line.index("}", pos) + 1
                break
            lm = _LABEL.match(line, pos)
            if not lm:
                raise ValueError(f"bad labels in {line[:80]!r}")
            labels[lm.group(1)] = _unescape(lm.group(2))
            pos = lm.end()
            if not lm.group(3) and not line[pos:].lstrip().startswith("}"):
                raise ValueError(f"bad labels in {line[:80]!r}")
    parts = line[pos:].split()
    if not parts or len(parts) > 2:
        raise ValueError(f"missing value in {line[:80]!r}")
    return Sample(name, labels, float(parts[0]))  # float() accepts NaN, +Inf, -Inf


def parse(text: str, source: str = "metrics") -> list[Sample]:
    """All samples in a text exposition; a malformed line is a UserError naming the source."""
    out: list[Sample] = []
    for n, line in enumerate(text.splitlines(), 1):
        try:
            s = parse_line(line)
        except ValueError as e:
            raise UserError(f"{source} line {n}: not Prometheus text format: {e}") from None
        if s is not None:
            out.append(s)
    return out


def select(samples: list[Sample], name: str, **labels: str) -> list[Sample]:
    """Samples with this name whose labels include every given label=value."""
    return [
        s
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def value(samples: list[Sample], name: str, default: float | None = None, **labels: str) -> float:
    """Sum of the matching samples (one, usually); `default` when none match, else UserError."""
    found = select(samples, name, **labels)
    if not found:
        if default is not None:
            return default
        shown = ",".join(f'{k}="{v}"' for k, v in labels.items())
        raise UserError(f"metric {name}{{{shown}}} not found")
    return sum(s.value for s in found)
