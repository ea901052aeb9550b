"""summary.json: the machine-readable result of a run (DESIGN.md section 7)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from loadgate.config import describe_validation_error
from loadgate.errors import UserError
from loadgate.exits import STATUS_EXIT
from loadgate.judge.latency import GeneratorHealth
from loadgate.judge.verdict import Status, Verdict

SUMMARY_FILE = "summary.json"


class Summary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str
    scenario: str
    stack: str  # e.g. "twin" or "kubernetes:<context>"
    started: float | None = None  # epoch s
    finished: float | None = None
    gates: list[Verdict] = Field(default_factory=list)
    generator: GeneratorHealth | None = None
    # False when a figure could not be trusted (the generator or the twin could not keep time)
    valid: bool = True
    invalid_reason: str = ""
    figures: dict[str, float | None] = Field(default_factory=dict)  # extra figures worth keeping

    @property
    def passed(self) -> bool:
        return self.valid and all(g.passed for g in self.gates)

    @property
    def status(self) -> Status:
        """FAIL when the stack failed a figure; else INVALID when one could not be trusted."""
        if any(g.status == "FAIL" for g in self.gates):
            return "FAIL"
        if not self.valid or any(g.status == "INVALID" for g in self.gates):
            return "INVALID"
        return "PASS"

    @property
    def exit_code(self) -> int:
        return int(STATUS_EXIT[self.status])


def write_summary(run_dir: str | Path, summary: Summary) -> Path:
    path = Path(run_dir) / SUMMARY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(summary.model_dump_json(indent=2) + "\n")
    return path


def summary_path(where: str | Path) -> Path:
    """A run directory or a summary.json path -> the summary.json path."""
    p = Path(where)
    return p / SUMMARY_FILE if p.is_dir() else p


def read_summary(where: str | Path) -> Summary:
    """Read a run's summary; a missing or malformed file is a UserError naming it."""
    path = summary_path(where)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: no such file (is {where} a run directory?)") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
    try:
        return Summary.model_validate(data)
    except ValidationError as e:
        raise UserError(describe_validation_error(e, str(path))) from None
