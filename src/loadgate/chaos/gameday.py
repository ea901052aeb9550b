"""`loadgate gameday`: one experiment, under background load, with its evidence in one directory.

    result = run_gameday(Path("experiments/flood-queue.yaml"), out_dir=Path("reports/x"))

Loads and validates the experiment with chaoslib, boots the twin when the experiment targets it
and none runs (and stops it afterwards), makes sure the loadgate control is present, runs the
experiment with chaoslib's Python API (rollback strategy from the experiment's `runtime`, as
`chaos run` does), then writes journal.json beside the control's samples.parquet and
timeline.parquet, and report.html with the chaos events marked on every plot.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadgate.chaos.control import JOURNAL_FILE, TIMELINE_FILE, default_out_dir
from loadgate.chaos.platforms import ChaosSettings, settings_from
from loadgate.completion import writing
from loadgate.config import read_yaml
from loadgate.errors import UserError
from loadgate.traffic.scenario import load_scenario

CONTROL_MODULE = "loadgate.chaos.control"
Progress = Callable[[str], None]


@dataclass
class GamedayResult:
    out_dir: Path
    journal: dict[str, Any]
    report: Path | None

    @property
    def status(self) -> str:
        return str(self.journal.get("status"))

    @property
    def deviated(self) -> bool:
        return bool(self.journal.get("deviated"))

    @property
    def exit_code(self) -> int:
        from loadgate.exits import ExitCode

        if self.status == "interrupted":
            return ExitCode.INTERRUPTED
        ok = self.status == "completed" and not self.deviated
        return ExitCode.OK if ok else ExitCode.FAILED


def load(path: Path) -> dict[str, Any]:
    """Load and validate an experiment; any problem is one UserError line."""
    from chaoslib.exceptions import ChaosException
    from chaoslib.experiment import ensure_experiment_is_valid
    from chaoslib.loader import load_experiment

    if not path.is_file():
        raise UserError(f"{path}: no such experiment file")
    if path.suffix in (".yaml", ".yml"):
        read_yaml(path)  # a syntax error with its line, before chaoslib's own words
    try:
        experiment = load_experiment(str(path), {})
        ensure_experiment_is_valid(experiment)
    except ChaosException as e:
        raise UserError(f"{path}: invalid experiment: {str(e).splitlines()[0]}") from None
    return experiment


# keys gameday itself sets; chaoslib ignores a variable the configuration does not declare
GAMEDAY_KEYS = ("loadgate_out", "loadgate_control_url")


def configuration(experiment: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The experiment's configuration with `overrides` (each must be one of its keys)."""
    from chaoslib.configuration import load_configuration
    from chaoslib.exceptions import ChaosException

    declared = experiment.setdefault("configuration", {})
    for key in GAMEDAY_KEYS:
        declared.setdefault(key, "")
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise UserError(
            f"--var {unknown[0]}: not a configuration key of the experiment "
            f"(keys: {', '.join(sorted(declared))})"
        )
    overrides = {k: _typed(k, v, declared[k]) for k, v in overrides.items()}
    try:
        return load_configuration(experiment.get("configuration") or {}, dict(overrides))
    except ChaosException as e:
        raise UserError(f"experiment configuration: {e}") from None


def _typed(key: str, value: Any, declared: Any) -> Any:
    """A --var value in the type the key declares (`env_var_type`, else its default's type), so
    `--var window_s=abc` is refused here rather than deep inside an activity."""
    if not isinstance(value, str):
        return value
    default = declared.get("default") if isinstance(declared, dict) else declared
    kind = declared.get("env_var_type") if isinstance(declared, dict) else None
    if kind is None and isinstance(default, bool):
        kind = "bool"
    elif kind is None and isinstance(default, (int, float)):
        kind = "int" if isinstance(default, int) else "float"
    if kind == "bool":
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise UserError(f"--var {key}={value}: expected true or false")
    if kind in ("int", "float"):
        try:
            return int(value) if kind == "int" else float(value)
        except ValueError:
            raise UserError(
                f"--var {key}={value}: expected {'an integer' if kind == 'int' else 'a number'}"
            ) from None
    return value


def ensure_control(experiment: dict[str, Any]) -> None:
    """gameday always runs background load: add the loadgate control when it is missing."""
    controls = experiment.setdefault("controls", [])
    if not any((c.get("provider") or {}).get("module") == CONTROL_MODULE for c in controls):
        controls.append(
            {"name": "loadgate-traffic", "provider": {"type": "python", "module": CONTROL_MODULE}}
        )


def runtime_settings(experiment: dict[str, Any]) -> dict[str, Any]:
    """chaoslib settings with the experiment's runtime strategies, as `chaos run` builds them."""
    rt = experiment.get("runtime") or {}
    return {
        "runtime": {
            "rollbacks": {"strategy": (rt.get("rollbacks") or {}).get("strategy", "default")},
            "hypothesis": {"strategy": (rt.get("hypothesis") or {}).get("strategy", "default")},
        }
    }


@contextlib.contextmanager
def twin_for(cfg: dict[str, Any], manifests: Path, time_scale: float | None, progress: Progress):
    """Yield the control URL of a twin: the one configured or running, else boot one here
    (stopped on the way out)."""
    from loadgate.twin.daemon import running_twin

    s = settings_from(cfg)
    if s.control_url:
        yield s.control_url
        return
    state = running_twin(Path(s.twin_state_dir))
    if state is not None:
        progress(f"using the running twin (pid {state['pid']}, gRPC {state['grpc_target']})")
        yield state["control_url"]
        return
    from loadgate.twin.boot import boot_twin, time_scale_note, twin_spec

    spec = twin_spec(manifests, time_scale=time_scale)
    progress(f"no twin running: booting one from {manifests} ({time_scale_note(spec.time_scale)})")
    with boot_twin(spec, None, progress) as twin:
        yield twin.control_url
    progress("twin stopped")


def plan(path: Path, overrides: dict[str, Any] | None = None) -> list[str]:
    """What a run would do (for --dry-run): nothing is booted, touched or started."""
    from loadgate.chaos.safety import describe_plan

    experiment = load(path)
    cfg = configuration(experiment, overrides or {})
    s = settings_from(cfg, str(path))
    lines = [f"platform: {s.platform}"]
    if s.platform == "twin":
        from loadgate.twin.daemon import running_twin

        state = None if s.control_url else running_twin(Path(s.twin_state_dir))
        where = s.control_url or (state and f"running twin pid {state['pid']}")
        lines.append(f"twin: {where or 'none running: gameday would boot one'}")
    else:
        from loadgate.chaos.platforms import kubernetes_block

        try:
            kubernetes_block(s.config)
            lines.append(f"kubernetes: from {s.config} (refused unless in kubernetes.allowed)")
        except UserError as e:
            lines.append(f"REFUSED: {e}")
    try:
        load_scenario(s.scenario)
        lines.append(f"background load: {s.scenario} for the whole experiment")
    except UserError as e:
        lines.append(f"REFUSED: background load: {e}")
    return lines + describe_plan(experiment, cfg)


def run_gameday(
    path: Path,
    out_dir: Path | None = None,
    overrides: dict[str, Any] | None = None,
    manifests: Path = Path("fixtures/k8s"),
    time_scale: float | None = None,
    progress: Progress | None = None,
) -> GamedayResult:
    from chaoslib.experiment import run_experiment

    say = progress or (lambda _m: None)
    experiment = load(path)
    ensure_control(experiment)
    vars_: dict[str, Any] = dict(overrides or {})
    out = (out_dir or default_out_dir(experiment.get("title", path.stem))).resolve()
    vars_["loadgate_out"] = str(out)
    cfg = configuration(experiment, vars_)
    settings = settings_from(cfg, str(path))
    load_scenario(settings.scenario)  # the background load's file: one line now, not mid-run
    if settings.platform == "kubernetes":
        from loadgate.chaos.platforms import build_platform

        build_platform(settings).close()  # the allowlist check, before any load
        twin = contextlib.nullcontext(None)
    else:
        from loadgate.twin.manifests import load_twin_spec

        if settings_wants_boot(settings):
            load_twin_spec(manifests)  # broken manifests: one line, before the run directory
        twin = twin_for(cfg, manifests, time_scale, say)
    with writing(out, "loadgate gameday"):
        with twin as control_url, _chaos_log(out, say):
            if control_url:
                vars_["loadgate_control_url"] = control_url
            say(f"running '{experiment.get('title')}' with background load, out {out}")
            journal = run_experiment(
                experiment, settings=runtime_settings(experiment), experiment_vars=(vars_, {})
            )
        (out / JOURNAL_FILE).write_text(json.dumps(journal, indent=2, default=str))
        report = write_gameday_report(out, journal, experiment)
    return GamedayResult(out, journal, report)


def settings_wants_boot(s: ChaosSettings) -> bool:
    """gameday boots a twin: no control URL is configured and no twin is running."""
    from loadgate.twin.daemon import running_twin

    return not s.control_url and running_twin(Path(s.twin_state_dir)) is None


@contextlib.contextmanager
def _chaos_log(out: Path, progress: Progress) -> Iterator[None]:
    """chaostoolkit's log lines as progress, and in full in chaostoolkit.log."""
    logger = logging.getLogger("chaostoolkit")

    class Echo(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.INFO:
                progress(record.getMessage().removeprefix("loadgate: "))

    file_handler = logging.FileHandler(out / "chaostoolkit.log")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handlers = [file_handler, Echo()]
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    for h in handlers:
        logger.addHandler(h)
    try:
        yield
    finally:
        for h in handlers:
            logger.removeHandler(h)
        file_handler.close()
        logger.setLevel(old_level)


def write_gameday_report(out: Path, journal: dict[str, Any], experiment: dict[str, Any]) -> Path:
    """report.html from the run directory. The verdicts: each hypothesis probe's output against
    its tolerance, then whether the steady state held (INVALID when the experiment was
    interrupted, whose report then says INTERRUPTED)."""
    from loadgate.chaos.verdicts import probe_verdicts, steady_state_verdict
    from loadgate.judge import generator_health
    from loadgate.report import Summary, write_report, write_summary
    from loadgate.report.status import journal_interruption
    from loadgate.schema import empty_samples, empty_timeline, read_samples, read_timeline

    samples_path, timeline_path = out / "samples.parquet", out / TIMELINE_FILE
    samples = read_samples(samples_path) if samples_path.exists() else empty_samples()
    timeline = read_timeline(timeline_path) if timeline_path.exists() else empty_timeline()
    title = str(experiment.get("title", ""))
    summary = Summary(
        run_id=out.name,
        scenario=title,
        stack=settings_from(configuration(experiment, {"loadgate_out": str(out)})).platform,
        started=float(samples["intended"].min()) if not samples.empty else time.time(),
        finished=float(samples["end"].max()) if not samples.empty else time.time(),
        gates=[*probe_verdicts(journal), steady_state_verdict(journal, title)],
        generator=generator_health(samples) if not samples.empty else None,
        figures={"duration_s": journal.get("duration")},
    )
    write_summary(out, summary)
    return write_report(out, summary, samples, timeline, interrupted=journal_interruption(journal))
