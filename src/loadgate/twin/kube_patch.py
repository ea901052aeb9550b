"""PATCH bodies as the Kubernetes API server applies them, for the twin's emulated API. Pure.

`application/merge-patch+json` (RFC 7386) and `application/strategic-merge-patch+json` (the same
for the scalar fields the twin lets change) merge an object into the current one;
`application/json-patch+json` (RFC 6902) applies operations. Server-side apply is not served.
"""

from __future__ import annotations

import copy
import json
from typing import Any

MERGE_TYPES = ("application/merge-patch+json", "application/strategic-merge-patch+json")
JSON_PATCH = "application/json-patch+json"


class PatchError(ValueError):
    """A patch that cannot be applied (answered 422 Invalid, or 415 for the content type)."""

    def __init__(self, message: str, code: int = 422) -> None:
        super().__init__(message)
        self.code = code


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, steps: list[str], path: str) -> tuple[Any, str]:
    cur = doc
    for step in steps[:-1]:
        if isinstance(cur, dict) and step in cur:
            cur = cur[step]
        elif isinstance(cur, list) and step.isdigit() and int(step) < len(cur):
            cur = cur[int(step)]
        else:
            raise PatchError(f"path {path!r} does not exist")
    return cur, steps[-1]


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 add / remove / replace / test (copy and move are refused)."""
    if not isinstance(ops, list):
        raise PatchError("a json-patch body must be a list of operations")
    out = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"invalid operation {op!r}: needs op and path")
        try:
            _apply(out, op)
        except PatchError:
            raise
        except (ValueError, IndexError, TypeError) as e:  # e.g. a list index that is no number
            raise PatchError(f"cannot apply {op!r}: {e}") from None
    return out


def _apply(out: Any, op: dict[str, Any]) -> None:
    """One RFC 6902 operation, in place."""
    kind, path = op["op"], str(op["path"])
    steps = _pointer(path)
    if not steps:
        raise PatchError("operations on the whole object are not supported")
    parent, last = _parent(out, steps, path)
    exists = (isinstance(parent, dict) and last in parent) or (
        isinstance(parent, list) and last.isdigit() and int(last) < len(parent)
    )
    if kind == "test":
        here = parent[int(last)] if isinstance(parent, list) else parent.get(last)
        if not exists or here != op.get("value"):
            raise PatchError(f"test operation failed at {path!r}")
    elif kind in ("replace", "remove") and not exists:
        raise PatchError(f"{kind} operation does not apply: doc is missing path: {path}")
    elif kind == "remove":
        del parent[int(last) if isinstance(parent, list) else last]
    elif kind in ("add", "replace"):
        if isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            if kind == "add":
                parent.insert(index, op.get("value"))
            else:
                parent[index] = op.get("value")
        elif isinstance(parent, dict):
            parent[last] = op.get("value")
        else:
            raise PatchError(f"path {path!r} does not exist")
    else:
        raise PatchError(f"unsupported json-patch operation {kind!r}")


def apply_patch(current: dict[str, Any], body: bytes, content_type: str) -> dict[str, Any]:
    """The object `current` with the PATCH body applied."""
    ctype = content_type.split(";")[0].strip().lower()
    if ctype not in (*MERGE_TYPES, JSON_PATCH):
        raise PatchError(
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{JSON_PATCH}, {', '.join(MERGE_TYPES)} (server-side apply is not served)",
            code=415,
        )
    try:
        patch = json.loads(body or b"null")
    except ValueError as e:
        raise PatchError(f"the patch is not valid JSON: {e}", code=400) from None
    if ctype == JSON_PATCH:
        return json_patch(current, patch)
    if not isinstance(patch, dict):
        raise PatchError("a merge patch must be a JSON object", code=400)
    return merge(current, patch)
