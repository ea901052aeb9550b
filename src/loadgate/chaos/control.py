"""Chaos Toolkit control: loadgate traffic in the background for the whole experiment, and the
experiment's events marked in the run's timeline.

    controls:
      - name: loadgate-traffic
        provider:
          type: python
          module: loadgate.chaos.control
          arguments: {scenario: experiments/load/steady.yaml}   # optional

Before the experiment: pick the platform (the safety check runs here, before any load), start
Locust in its own process (`start_scenario`) against the platform's gRPC target, writing into the
run directory. During it: method start/end and the rollbacks are marked (actions mark
themselves, with the pods they hit). After it: stop the load in order (every call gets a row),
then write timeline.parquet (chaos events + the platform's pod/replica/autoscaler timeline) and
journal.json beside samples.parquet. `cleanup_control` stops the load and any flood again, so
an interrupted or crashed experiment leaves nothing running.
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import pandas as pd

from loadgate.chaos import session
from loadgate.chaos.platforms import platform_for, settings_from
from loadgate.observe.timeline import TimelineCollector, rows_frame
from loadgate.schema import write_timeline

log = logging.getLogger("chaostoolkit")

JOURNAL_FILE = "journal.json"
TIMELINE_FILE = "timeline.parquet"
LOAD_FILE = "load.json"  # pid and target of the background load (tests check it is gone)

_handle: Any = None  # the running RunHandle
_collector: TimelineCollector | None = None  # pods, replicas, Prometheus during the experiment
_started: float = 0.0


def default_out_dir(title: str, now: float | None = None) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40] or "experiment"
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return Path("reports") / f"chaos-{stamp}-{slug}"


def _interrupt(msg: str) -> None:
    from chaoslib.exceptions import InterruptExecution

    raise InterruptExecution(f"loadgate: {msg}")


def before_experiment_control(
    context: dict, configuration: dict = None, scenario: str = None, **kwargs: Any
) -> None:
    global _handle, _collector, _started
    from loadgate.errors import UserError
    from loadgate.traffic.runner import RunFailed, start_scenario
    from loadgate.traffic.scenario import load_scenario

    try:
        s = settings_from(configuration)
        out = Path(s.out) if s.out else default_out_dir(context.get("title", ""))
        out.mkdir(parents=True, exist_ok=True)
        session.reset(out.resolve())
        platform = platform_for(configuration)  # refuses a cluster outside the allowlist
        session.current().replicas_before = platform.replicas().spec
        sc = load_scenario(scenario or s.scenario)
        target = platform.grpc_target
        _started = time.time()
        _handle = start_scenario(sc, target, out, processes=s.load_processes)
        _collector = TimelineCollector(platform, platform.prometheus_url).start()
    except (UserError, RunFailed, OSError) as e:
        _interrupt(f"cannot start the background load: {e}")
    (out / LOAD_FILE).write_text(
        json.dumps({"pid": _handle.proc.pid, "target": target, "scenario": sc.name})
    )
    log.info(f"loadgate: background load '{sc.name}' -> {target}, run directory {out}")
    session.mark("experiment_start", name=context.get("title", ""))


def before_method_control(context: Any, **kwargs: Any) -> None:
    session.mark("method_start")


def after_method_control(context: Any, **kwargs: Any) -> None:
    session.mark("method_end")


def before_rollback_control(context: Any, **kwargs: Any) -> None:
    session.mark("rollbacks_start")


def after_experiment_control(
    context: dict, state: dict = None, configuration: dict = None, **kwargs: Any
) -> None:
    """Stop the load, then write timeline.parquet and journal.json into the run directory."""
    global _collector
    out = session.current().out_dir
    session.mark("experiment_end", name=context.get("title", ""))
    _stop_floods()
    result = stop_load()
    if out is None:
        return
    if result is not None:
        log.info(f"loadgate: background load stopped, {len(result.samples)} calls recorded")
    chaos = rows_frame(list(session.read_events(out)) or list(session.current().events))
    collector, _collector = _collector, None
    frames = [chaos]
    if collector is not None:
        frames.append(collector.collect(_started - 5, time.time(), since=_started - 5))
        for note in collector.notes:
            log.warning(f"loadgate: {note}")
    frames = [f for f in frames if len(f)]
    timeline = pd.concat(frames, ignore_index=True) if frames else rows_frame([])
    write_timeline(timeline.sort_values("time", kind="stable"), out / TIMELINE_FILE)
    if state is not None:
        (out / JOURNAL_FILE).write_text(json.dumps(state, indent=2, default=str))


def cleanup_control(**kwargs: Any) -> None:
    """Last resort (also after Ctrl-C or a crash): no flood and no load outlive the experiment."""
    _stop_floods()
    stop_load()
    stop_sampler()


def stop_sampler() -> None:
    global _collector
    collector, _collector = _collector, None
    if collector is not None:
        collector.stop()


def stop_load(grace_s: float = 40.0) -> Any:
    """Ask the background load to stop in order and wait for its rows; kill it if it hangs."""
    global _handle
    handle, _handle = _handle, None
    if handle is None:
        return None
    from loadgate.traffic.runner import RunFailed

    try:
        handle.stop()
        deadline = time.monotonic() + grace_s
        while handle.running and time.monotonic() < deadline:
            time.sleep(0.2)
        if handle.running:
            handle.kill()
        return handle.result()
    except (RunFailed, OSError) as e:
        log.warning(f"loadgate: background load ended badly: {e}")
        return None
    finally:
        if handle.running:
            handle.kill()


def _stop_floods() -> None:
    for f in list(session.current().floods.values()):
        f.stop()
    for f in list(session.current().floods.values()):
        f.wait(timeout=10)
