"""The rule registry: each architecture rule is a function over the located stack that returns
findings with file, key path and fix. Register one with `@rule(id, description)`.
"""

from __future__ import annotations

from collections.abc import Callable

from loadgate.lint.documents import Doc, Manifests
from loadgate.lint.findings import Finding, Severity
from loadgate.lint.stack import Stack

RuleFn = Callable[[Stack, Manifests], list[Finding]]
RULES: dict[str, tuple[str, RuleFn]] = {}


def rule(rule_id: str, description: str) -> Callable[[RuleFn], RuleFn]:
    def register(fn: RuleFn) -> RuleFn:
        RULES[rule_id] = (description, fn)
        return fn

    return register


def finding(
    rule_id: str, sev: Severity, where: Doc | str, path: str, msg: str, fix: str
) -> Finding:
    """A finding about a document (file and index known) or a whole directory (a path)."""
    if isinstance(where, Doc):
        return Finding(rule_id, sev, where.file, path, msg, fix, doc=where.index)
    return Finding(rule_id, sev, where, path, msg, fix)
