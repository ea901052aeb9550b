"""Which manifests a directory deploys, read as documents with their file and index.

With a kustomization.yaml the files are its `resources:` (what `kubectl apply -k` deploys),
and YAML files beside it that it does not list are reported: they would silently not ship.
Without one, every *.yaml / *.yml file is read. Unreadable or malformed YAML is a finding, not
a crash, so one bad file does not hide the others' problems.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from loadgate.config import read_yaml
from loadgate.errors import UserError
from loadgate.lint.findings import Finding

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


@dataclass(frozen=True)
class Doc:
    file: str  # path as shown in findings
    index: int  # position in a multi-document file
    obj: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @property
    def name(self) -> str:
        return str((self.obj.get("metadata") or {}).get("name", ""))


@dataclass
class Manifests:
    directory: str
    files: list[str]
    docs: list[Doc]
    findings: list[Finding]

    def of_kind(self, kind: str) -> list[Doc]:
        return [d for d in self.docs if d.kind == kind]


def _yaml_files(directory: Path) -> list[Path]:
    return sorted(
        p
        for p in directory.iterdir()
        if p.is_file() and p.suffix in (".yaml", ".yml") and p.name not in KUSTOMIZATION_NAMES
    )


def _kustomization(directory: Path) -> Path | None:
    return next((directory / n for n in KUSTOMIZATION_NAMES if (directory / n).is_file()), None)


def _read_docs(path: Path, shown: str, findings: list[Finding]) -> list[Doc]:
    try:
        raw = list(yaml.safe_load_all(path.read_text()))
    except OSError as e:
        findings.append(
            Finding("yaml", "error", shown, "", f"cannot read: {e.strerror}", "fix the file")
        )
        return []
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        findings.append(
            Finding("yaml", "error", shown, where, f"malformed YAML: {problem}", "fix the syntax")
        )
        return []
    docs: list[Doc] = []
    for i, obj in enumerate(raw):
        if obj is None:
            continue
        if not isinstance(obj, dict) or "kind" not in obj or "apiVersion" not in obj:
            findings.append(
                Finding(
                    "yaml",
                    "error",
                    shown,
                    f"document {i}",
                    "not a Kubernetes object (needs apiVersion and kind)",
                    "make each YAML document a Kubernetes object",
                    doc=i,
                )
            )
            continue
        docs.append(Doc(shown, i, obj))
    return docs


def load(directory: str | Path) -> Manifests:
    """Read the manifests of `directory`; a missing directory is bad input (UserError)."""
    d = Path(directory)
    if not d.is_dir():
        raise UserError(f"{d}: not a directory of manifests")
    findings: list[Finding] = []
    kust = _kustomization(d)
    if kust is not None:
        files = _kustomize_resources(kust, findings)
        listed = {p.resolve() for p in files}
        for p in _yaml_files(d):
            if p.resolve() not in listed:
                # Read it anyway: a malformed file in the manifests folder is an error even if
                # kustomize skips it (someone meant to ship it); a valid one is only a warning.
                _read_docs(p, str(p), findings)
                findings.append(
                    Finding(
                        "kustomization-resources",
                        "warning",
                        str(p),
                        "",
                        f"not listed in {kust.name} resources: `kubectl apply -k` will not deploy it",
                        f"add '{p.name}' to resources: in {kust}",
                    )
                )
    else:
        files = _yaml_files(d)
    if not files:
        raise UserError(f"{d}: no Kubernetes manifests (*.yaml) found")
    docs = [doc for p in files for doc in _read_docs(p, str(p), findings)]
    return Manifests(str(d), [str(p) for p in files], docs, findings)


def _kustomize_resources(kust: Path, findings: list[Finding]) -> list[Path]:
    data = read_yaml(kust) or {}  # a syntax error is one line with its line number
    if not isinstance(data, dict):
        raise UserError(f"{kust}: expected a Kustomization mapping, got {type(data).__name__}")
    out: list[Path] = []
    for i, entry in enumerate(data.get("resources") or []):
        p = kust.parent / str(entry)
        if p.is_file():
            out.append(p)
            continue
        why = (
            "a directory or remote resource (not followed by lint)"
            if p.is_dir() or "://" in str(entry)
            else "missing"
        )
        findings.append(
            Finding(
                "kustomization-resources",
                "warning" if p.is_dir() or "://" in str(entry) else "error",
                str(kust),
                f"resources[{i}]",
                f"'{entry}' is {why}",
                "list the manifest files of this directory"
                if why != "missing"
                else f"create {p} or remove the entry",
            )
        )
    return out
