"""Named baselines: one or more runs copied into `baselines/NAME/` (a directory a team commits
or keeps as a CI artifact), with `baseline.json` saying what they are.

Only the files a comparison reads are copied (samples, traffic and gate summaries, scenario,
stack record, capacity result): about 30 KB for a 30 s run of the mixed scenario.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from loadgate import __version__
from loadgate.config import describe_validation_error
from loadgate.errors import UserError
from loadgate.regression import BASELINES_DIR
from loadgate.regression.result import CAPACITY_FILE
from loadgate.regression.rundir import (
    BASELINE_FILE,
    SCENARIO_FILE,
    TRAFFIC_SUMMARY,
    RunKind,
    expand,
    read_run,
)
from loadgate.report.summary import SUMMARY_FILE
from loadgate.traffic.recorder import GENERATOR_FILE, SAMPLES_FILE, TOKEN_GAPS_FILE
from loadgate.traffic.stacks import STACK_FILE

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
KEEP = (
    SAMPLES_FILE,
    TOKEN_GAPS_FILE,
    TRAFFIC_SUMMARY,
    GENERATOR_FILE,
    SCENARIO_FILE,
    STACK_FILE,
    SUMMARY_FILE,
    CAPACITY_FILE,
)


class SavedRun(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dir: str  # inside the baseline
    source: str  # where it was saved from
    kind: RunKind
    identity: str


class BaselineInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    created: str  # UTC, ISO 8601
    loadgate: str
    runs: list[SavedRun]


def save(name: str, sources: list[Path], root: Path = BASELINES_DIR, force: bool = False) -> Path:
    """Copy the runs `sources` stand for into root/name; every run must be valid and of one
    scenario and stack. Replaces an existing baseline only with force."""
    if not NAME.match(name):
        raise UserError(f"baseline name {name!r}: use letters, digits, '.', '_' and '-'")
    dest = root / name
    if dest.exists() and not force:
        raise UserError(f"{dest}: a baseline of that name exists (--force replaces it)")
    dirs = [d for s in sources for d in expand(s)]
    runs = [read_run(d) for d in dirs]
    bad = [f"{r.path} ({r.invalid_reason})" for r in runs if not r.valid]
    if bad:
        raise UserError(f"INVALID runs cannot be a baseline: {', '.join(bad)}")
    ids = sorted({r.identity for r in runs})
    if len(ids) > 1:
        raise UserError(f"the runs are of different scenarios or stacks: {' / '.join(ids)}")
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    saved = []
    for i, r in enumerate(runs, 1):
        sub = Path("runs") / f"run-{i:02d}"
        (tmp / sub).mkdir(parents=True)
        for f in KEEP:
            if (r.path / f).exists():
                shutil.copy2(r.path / f, tmp / sub / f)
        saved.append(SavedRun(dir=str(sub), source=str(r.path), kind=r.kind, identity=r.identity))
    info = BaselineInfo(
        name=name,
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        loadgate=__version__,
        runs=saved,
    )
    (tmp / BASELINE_FILE).write_text(info.model_dump_json(indent=2) + "\n")
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    return dest


def listing(root: Path = BASELINES_DIR) -> list[BaselineInfo]:
    if not root.is_dir():
        return []
    out = []
    for f in sorted(root.glob(f"*/{BASELINE_FILE}")):
        try:
            out.append(BaselineInfo.model_validate_json(f.read_text()))
        except ValidationError as e:
            why = describe_validation_error(e, str(f))
            raise UserError(f"{why.replace(': ', ': not a loadgate baseline: ', 1)}") from None
    return out


def resolve(arg: str, root: Path = BASELINES_DIR) -> Path:
    """A path as given, else the baseline of that name under root."""
    p = Path(arg)
    if p.exists():
        return p
    if NAME.match(arg) and (root / arg).is_dir():
        return root / arg
    raise UserError(f"{arg}: no such run directory or baseline (baselines live in {root}/)")
