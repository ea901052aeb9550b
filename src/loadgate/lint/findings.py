"""A lint finding and how findings are shown (text for people, JSON for CI)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    rule: str  # rule id, e.g. lb-least-request
    severity: Severity
    file: str  # manifest file as given on the command line
    path: str  # key path inside the document, e.g. spec.triggers[0].metadata.query
    message: str  # what is wrong and why it matters in this architecture
    fix: str  # what to change
    doc: int = 0  # index of the document in a multi-document file
    line: int | None = None  # 1-based line of `path` in `file`, when it can be found

    def text(self) -> str:
        loc = f"{self.file}:{self.line}" if self.line else self.file
        where = f"{loc}: {self.path}" if self.path else loc
        return f"{where}: {self.severity} [{self.rule}] {self.message}\n    fix: {self.fix}"


def counts(findings: list[Finding]) -> tuple[int, int]:
    errors = sum(f.severity == "error" for f in findings)
    return errors, len(findings) - errors


def render_text(findings: list[Finding], files: list[str], objects: int) -> str:
    errors, warnings = counts(findings)
    lines = [f.text() for f in findings]
    verdict = "FAIL" if errors else "ok"
    lines.append(
        f"loadgate lint: {verdict}: {len(files)} files, {objects} objects, "
        f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
    )
    return "\n".join(lines)


def render_json(
    findings: list[Finding], files: list[str], objects: int, rules: list[str], directory: str
) -> str:
    errors, warnings = counts(findings)
    return json.dumps(
        {
            "directory": directory,
            "ok": errors == 0,
            "errors": errors,
            "warnings": warnings,
            "files": files,
            "objects": objects,
            "rules": rules,
            "findings": [asdict(f) for f in findings],
        },
        indent=2,
    )
