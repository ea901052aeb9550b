"""Run every check over a directory of manifests: schemas first, then the architecture's rules."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from loadgate.lint import (  # noqa: F401 - importing the rule modules registers them
    documents,
    rules_envoy,
    rules_metrics,
    rules_scaling,
    schemas,
)
from loadgate.lint.findings import Finding
from loadgate.lint.lines import line_of
from loadgate.lint.registry import RULES
from loadgate.lint.stack import locate

SCHEMA_RULES = {
    "yaml": "every file is well-formed YAML of Kubernetes objects",
    "kustomization-resources": "kustomization.yaml lists every manifest beside it",
    "k8s-schema": "core kinds match the Kubernetes schemas (unknown fields are errors)",
    "keda-schema": "the ScaledObject matches KEDA's fields",
    "envoy-schema": "the Envoy bootstrap matches Envoy's v3 API (unknown fields are errors)",
}


@dataclass
class LintResult:
    directory: str
    files: list[str]
    objects: int
    findings: list[Finding]

    @property
    def errors(self) -> int:
        return sum(f.severity == "error" for f in self.findings)


def rule_descriptions() -> dict[str, str]:
    return {**SCHEMA_RULES, **{k: desc for k, (desc, _fn) in RULES.items()}}


def lint(directory: str | Path, kube_version: str = schemas.DEFAULT_KUBE_VERSION) -> LintResult:
    m = documents.load(directory)
    findings = list(m.findings)
    for doc in m.docs:
        findings += schemas.check_kubernetes(doc, kube_version)
        if doc.kind == "ScaledObject":
            findings += schemas.check_scaled_object(doc)
    configs: dict[tuple[str, str], dict[str, Any]] = {}
    for doc, key, text in schemas.envoy_bootstraps(m):
        found, config = schemas.check_envoy(doc, key, text)
        findings += found
        if config is not None:
            configs[(doc.file, key)] = config
    m.findings = findings  # rules may look at schema results (to avoid repeating them)
    stack = locate(m, configs)
    for _desc, fn in RULES.values():
        findings += fn(stack, m)
    findings = [
        replace(f, line=line_of(f.file, f.doc, f.path) if f.path else None) for f in findings
    ]
    order = {"error": 0, "warning": 1}
    findings.sort(key=lambda f: (order[f.severity], f.file, f.path))
    return LintResult(m.directory, m.files, len(m.docs), findings)
