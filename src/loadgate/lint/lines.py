"""Line numbers for findings: follow a key path through the YAML node tree of its file.

A path into the Envoy bootstrap (`data[envoy.yaml].static_resources...`) continues inside the
ConfigMap's block scalar. A key that is absent (the finding is that it is missing) resolves to
its nearest existing parent, which is where it should be added.
"""

from __future__ import annotations

import re
from functools import lru_cache

import yaml

_TOKEN = re.compile(r"\[([^\]]+)\]|([^.\[\]]+)")


def parse_path(path: str) -> list[str | int]:
    """'data[envoy.yaml].clusters[0].lb_policy' -> ['data', 'envoy.yaml', 'clusters', 0, 'lb_policy']."""
    out: list[str | int] = []
    for bracket, plain in _TOKEN.findall(path):
        if bracket:
            out.append(int(bracket) if bracket.isdigit() else bracket)
        else:
            out.append(plain)
    return out


def _child(node: yaml.Node, key: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode) and isinstance(key, str):
        return next((v for k, v in node.value if getattr(k, "value", None) == key), None)
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
        return node.value[key]
    return None


def _walk(node: yaml.Node, parts: list[str | int], offset: int) -> int:
    """1-based line of the deepest node along `parts` (descending into embedded YAML)."""
    line = node.start_mark.line + 1 + offset
    for i, key in enumerate(parts):
        child = _child(node, key)
        if child is None:
            return line
        if isinstance(child, yaml.ScalarNode) and child.style in ("|", ">") and parts[i + 1 :]:
            try:
                inner = yaml.compose(child.value)
            except yaml.YAMLError:
                return child.start_mark.line + 1 + offset
            if inner is None:
                return child.start_mark.line + 1 + offset
            # A block scalar's content starts on the line after its indicator.
            return _walk(inner, parts[i + 1 :], offset + child.start_mark.line + 1)
        node, line = child, child.start_mark.line + 1 + offset
    return line


@lru_cache(maxsize=64)
def _documents(file: str, mtime_ns: int) -> list[yaml.Node]:
    with open(file) as f:
        return list(yaml.compose_all(f))


def line_of(file: str, doc_index: int, path: str) -> int | None:
    """Line of `path` in document `doc_index` of `file`, or None when it cannot be read."""
    try:
        from os import stat

        docs = _documents(file, stat(file).st_mtime_ns)
        node = docs[doc_index]
    except (OSError, IndexError, yaml.YAMLError):
        return None
    return _walk(node, parse_path(path), 0) if node is not None else None
