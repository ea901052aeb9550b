"""Label and field selectors as the Kubernetes API server parses them (`labelSelector`,
`fieldSelector` query parameters), for the twin's emulated API. Pure functions.

Labels: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, `k>1`, `k<1`, joined by
commas (apimachinery's labels.Parse). Fields: `path=v`, `path==v`, `path!=v` over the field labels
a resource supports; any other field is refused as the API server refuses it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_KEY = r"[A-Za-z0-9](?:[-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_EXISTS = re.compile(rf"^(!?)\s*({_KEY})$")
_EQUALITY = re.compile(rf"^({_KEY})\s*(==|=|!=)\s*({_VALUE})$")
_SET = re.compile(rf"^({_KEY})\s+(in|notin)\s*\(([^()]*)\)$")
_COMPARE = re.compile(rf"^({_KEY})\s*([<>])\s*(-?\d+)$")
_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9.]*)\s*(==|=|!=)\s*(.*)$")


class SelectorError(ValueError):
    """A selector the API server would refuse (answered as a 400 BadRequest Status)."""


@dataclass(frozen=True)
class LabelRequirement:
    key: str
    op: str  # exists | !exists | = | != | in | notin | > | <
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        has = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return has
        if self.op == "!exists":
            return not has
        if self.op in ("=", "in"):
            return has and value in self.values
        if self.op in ("!=", "notin"):
            return value not in self.values  # absent keys match, as in Kubernetes
        try:  # > and <: both sides integers; a non-integer label never matches
            n, bound = int(value or ""), int(self.values[0])
        except ValueError:
            return False
        return n > bound if self.op == ">" else n < bound


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts]


def parse_labels(text: str | None) -> tuple[LabelRequirement, ...]:
    """A labelSelector; empty selects everything."""
    if not text or not text.strip():
        return ()
    reqs = []
    for part in _split_top(text):
        if m := _EQUALITY.match(part):
            op = "!=" if m.group(2) == "!=" else "="
            reqs.append(LabelRequirement(m.group(1), op, (m.group(3),)))
        elif m := _SET.match(part):
            values = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
            if not values:
                raise SelectorError(
                    f"unable to parse requirement: for '{m.group(2)}' operator, "
                    "values set can't be empty"
                )
            reqs.append(LabelRequirement(m.group(1), m.group(2), values))
        elif m := _COMPARE.match(part):
            reqs.append(LabelRequirement(m.group(1), m.group(2), (m.group(3),)))
        elif m := _EXISTS.match(part):
            reqs.append(LabelRequirement(m.group(2), "!exists" if m.group(1) else "exists"))
        else:
            raise SelectorError(f"unable to parse requirement: found '{part}', expected a label")
    return tuple(reqs)


@dataclass(frozen=True)
class FieldRequirement:
    path: str
    negate: bool
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        return (fields.get(self.path, "") == self.value) != self.negate


def parse_fields(text: str | None, supported: tuple[str, ...]) -> tuple[FieldRequirement, ...]:
    """A fieldSelector over the field labels `supported` (metadata.name, status.phase, ...)."""
    if not text or not text.strip():
        return ()
    reqs = []
    for part in (p.strip() for p in text.split(",")):
        m = _FIELD.match(part)
        if not m:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        if m.group(1) not in supported:
            raise SelectorError(f"field label not supported: {m.group(1)}")
        reqs.append(FieldRequirement(m.group(1), m.group(2) == "!=", m.group(3).strip()))
    return tuple(reqs)


def field_values(obj: Mapping[str, Any], supported: tuple[str, ...]) -> dict[str, str]:
    """The field labels of a serialized object: dotted paths into its JSON form (`source` is an
    Event's reporting component, as the API server defines it)."""
    out: dict[str, str] = {}
    for path in supported:
        cur: Any = obj
        for step in ("source", "component") if path == "source" else path.split("."):
            cur = cur.get(step) if isinstance(cur, Mapping) else None
        out[path] = "" if cur is None else str(cur).lower() if isinstance(cur, bool) else str(cur)
    return out


@dataclass(frozen=True)
class Selection:
    """What one list or watch request selects."""

    namespace: str | None  # None: every namespace
    labels: tuple[LabelRequirement, ...] = ()
    fields: tuple[FieldRequirement, ...] = ()
    field_labels: tuple[str, ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        if self.namespace is not None and meta.get("namespace", "") != self.namespace:
            return False
        labels = meta.get("labels") or {}
        if not all(r.matches(labels) for r in self.labels):
            return False
        if self.fields:
            values = field_values(obj, self.field_labels)
            return all(r.matches(values) for r in self.fields)
        return True
