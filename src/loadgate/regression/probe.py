"""One probe of a capacity search: the scenario's classes at one load, judged against their SLOs.

A probe runs two phases at the load (an open-loop rate, or users for a closed-loop scenario):
`warmup`, not judged (queues fill, connections open), then `measure`. A watch reads the live
rows and stops the probe early once it is clearly over-saturated: a class has already spent its
SLO budget for the whole probe (more calls over a bound, or failed, than the share allowed
permits, with margin, over several seconds), or the calls in flight grow by more than a quarter
of the arrivals beyond Poisson noise (a backlog). A probe whose generator fell behind is run
again, never judged. Each SLO is judged as a share: the calls over its bound (or failed) against
the share allowed (1 - q for a percentile, error_rate_max), misses in consecutive seconds
counted as one burst; its Jeffreys interval decides pass, fail or undecided (an undecided probe
is run again and its calls pooled, up to `repeats` times). The figures themselves carry the
block-bootstrap interval compare uses for one run, for the curve.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from loadgate.errors import UserError
from loadgate.platform.base import Platform
from loadgate.regression import figures as F
from loadgate.regression import stats
from loadgate.regression.result import ClassPoint, Decision, Probe, SloCheck
from loadgate.regression.rundir import WARMUP
from loadgate.traffic.live import read_live
from loadgate.traffic.runner import RunFailed, start_scenario
from loadgate.traffic.scenario import CapacitySearch, Scenario, TrafficClass
from loadgate.traffic.stacks import StackInfo, write_stack_info

MEASURE = "measure"
BUDGET_MARGIN = 2.0  # a budget counts as spent at twice what the SLO allows (+ BUDGET_SLACK)
BUDGET_SLACK = 5
BUDGET_SECONDS = 5  # ... spread over at least this many seconds
BACKLOG_WINDOW_S = 5.0
BACKLOG_SHARE = 0.25  # in flight growing by a quarter of the arrivals: not keeping up
ROW_DELAY_S = 4.0  # a row reaches the live chunks within this after its call ended
SHIP_MARGIN_S = 1.0  # rows of calls that ended this much before the newest row seen are in
SETTLE_TIMEOUT_S = 30.0


def probe_scenario(sc: Scenario, load: float, search: CapacitySearch, seed: int) -> Scenario:
    """`sc` with its phases replaced by warmup + measure at `load`, and the attempt's seed. Each
    attempt draws its own arrivals (the search's seed plus its number: a search replays, its
    probes do not): the fit pools probes as independent samples of the tail, so one lucky
    arrival pattern must not repeat in every probe."""
    data = sc.model_dump()
    if sc.open_loop:
        at = {"rate": load}
    else:
        users = max(1, round(load))
        at = {"users": users, "spawn_rate": users}
    phases = [{"name": MEASURE, "duration_s": search.measure_s, **at}]
    if search.warmup_s > 0:
        phases.insert(0, {"name": WARMUP, "duration_s": search.warmup_s, **at})
    data["phases"] = phases
    data["generator"]["seed"] = seed
    return Scenario.model_validate(data)


def _share(sc: Scenario, c: TrafficClass) -> float:
    return c.weight / sum(x.weight for x in sc.classes)


@dataclass
class Watch:
    """Decides, from the rows seen so far, that a probe is clearly over-saturated."""

    scenario: Scenario  # the probe's
    load: float
    search: CapacitySearch
    history: list[tuple[float, float]] = field(default_factory=list)
    growing: int = 0  # consecutive checks that saw the backlog grow

    def check(self, rows: pd.DataFrame, now: float, load_started: float) -> str | None:
        return self._budget(rows, now, load_started) or self._backlog(rows, now, load_started)

    def _expected(self, c: TrafficClass, rows: pd.DataFrame, elapsed: float) -> float:
        if self.scenario.open_loop:
            return self.load * _share(self.scenario, c) * self.search.measure_s
        seen = int((rows[F.CLS] == c.name).sum())  # closed loop: extrapolate what came so far
        return seen * self.search.measure_s / max(elapsed, 1.0)

    def _budget(self, rows: pd.DataFrame, now: float, load_started: float) -> str | None:
        """More calls over a bound (or failed) than the whole probe may have, with margin, in
        at least BUDGET_SECONDS different seconds: one pod full of long streams for a moment
        delays every call it takes, which is one event, not a spent budget."""
        elapsed = now - load_started - self.search.warmup_s
        if elapsed <= 0:
            return None
        calls = F.calls_frame(rows[rows["phase"] == MEASURE], self.scenario)
        window = F.Window(load_started + self.search.warmup_s, elapsed)
        for c, key, _, allowed, judged, missed in misses(self.scenario, calls):
            expected = self._expected(c, calls[calls[F.CLS] == c.name], elapsed)
            budget = allowed * expected
            over = int(missed.sum())
            if over > BUDGET_MARGIN * budget + BUDGET_SLACK and (
                seconds_missed(judged, missed, window) >= BUDGET_SECONDS
            ):
                what = (
                    "failed" if key == "error_rate_max" else f"over {key} {getattr(c.slo, key):g}"
                )
                return (
                    f"{c.name}: {over} calls {what} after {elapsed:.0f} s of "
                    f"{self.search.measure_s:g}, the whole probe may have {budget:.0f}"
                )
        return None

    def _backlog(self, rows: pd.DataFrame, now: float, load_started: float) -> str | None:
        """Calls in flight D seconds ago (arrivals expected by then minus calls ended by then:
        rows reach the live chunks late, by up to a few seconds on a busy machine), growing over
        the last window by more than a quarter of the arrivals plus 3 Poisson deviations, at two
        checks in a row."""
        if not self.scenario.open_loop:
            return None  # closed-loop users cannot build a backlog
        # no arrivals after the schedule's end: while the last long calls drain, the arrivals
        # "expected by now" would keep growing and look like a backlog
        then = min(now - ROW_DELAY_S, load_started + self.scenario.duration_s)
        if len(rows):
            # rows that come later than ROW_DELAY_S (a generator busy with its own work ships
            # late) would look like calls still in flight: judge no later than the rows reach
            # (a stack where nothing ends at all is the SLO budget's and the deadlines' case)
            then = min(then, float(rows["end"].max()) - SHIP_MARGIN_S)
        in_flight = self.load * (then - load_started) - int((rows["end"] <= then).sum())
        if then >= load_started + max(self.search.warmup_s, BACKLOG_WINDOW_S) and (
            not self.history or then > self.history[-1][0]
        ):
            self.history.append((then, in_flight))
        past = [h for h in self.history if h[0] <= then - BACKLOG_WINDOW_S]
        if not past:
            return None
        t_past, before = past[-1]
        arrivals = self.load * (then - t_past)
        growing = in_flight - before > BACKLOG_SHARE * arrivals + 3 * math.sqrt(arrivals)
        self.growing = self.growing + 1 if growing else 0
        if self.growing >= 2:
            return (
                f"backlog growing: ~{in_flight:.0f} calls in flight, "
                f"+{in_flight - before:.0f} in {then - t_past:.0f} s"
            )
        return None


@dataclass(frozen=True)
class Attempt:
    run_dir: Path
    calls: pd.DataFrame  # measure phase, figures.calls_frame
    window: F.Window
    valid: bool
    invalid_reason: str
    saturated: str  # why the watch stopped it, "" when it ran to the end
    backlog: bool = False  # ... because the calls in flight kept growing


def _pool(attempts: list[Attempt]) -> tuple[pd.DataFrame, F.Window]:
    """The attempts' calls as one run: each attempt's window placed after the previous one."""
    t0, offset, frames = attempts[0].window.t0, 0.0, []
    for a in attempts:
        frames.append(a.calls.assign(**{F.T: a.calls[F.T] - a.window.t0 + t0 + offset}))
        offset += a.window.duration_s
    return pd.concat(frames, ignore_index=True), F.Window(t0, offset)


def misses(
    sc: Scenario, calls: pd.DataFrame
) -> list[tuple[TrafficClass, str, str, float, pd.DataFrame, np.ndarray]]:
    """Per SLO of each class: (class, SLO key, figure, share allowed over the bound, the calls
    it judges, which of them missed it). A percentile bound B at q is "at most 1 - q of the
    successful calls slower than B"; error_rate_max is a share of all calls."""
    out = []
    for c in sc.classes:
        if c.slo is None:
            continue
        mine = calls[calls[F.CLS] == c.name]
        for key, (figure, column) in F.SLO_FIGURES.items():
            bound = getattr(c.slo, key)
            if bound is None:
                continue
            if column is None:
                out.append((c, key, figure, bound, mine, mine[F.FAILED].to_numpy(dtype=bool)))
                continue
            stat = F.FIGURES[figure].stat
            v = mine[column].to_numpy(dtype=float)
            keep = np.isfinite(v)
            out.append((c, key, figure, 1 - stat.q, mine[keep], v[keep] > bound))
    return out


def _per_second(judged: pd.DataFrame, missed: np.ndarray, window: F.Window) -> np.ndarray:
    n = window.n_buckets
    bucket = stats.bucket_index(judged[F.T].to_numpy(), window.t0, F.BUCKET_S, n)
    return np.bincount(bucket, weights=missed.astype(float), minlength=n)


def episodes(judged: pd.DataFrame, missed: np.ndarray, window: F.Window) -> int:
    """Runs of consecutive seconds of the window that hold a miss."""
    return stats.episodes(_per_second(judged, missed, window))


def seconds_missed(judged: pd.DataFrame, missed: np.ndarray, window: F.Window) -> int:
    return int(np.count_nonzero(_per_second(judged, missed, window)))


def decide(over: int, counted: int, runs: int, allowed: float) -> Decision:
    """Pass when the share over the bound is below `allowed` with 95 % confidence, fail when it
    is above, counting misses that came together (in consecutive seconds) as one event."""
    if counted == 0:
        return "undecided"
    k, n = stats.effective_counts(over, counted, over / runs if runs else 1.0)
    ci = stats.share_interval(float(k), float(n))
    if ci.hi <= allowed:
        return "pass"
    return "fail" if ci.lo > allowed else "undecided"


def _checks(sc: Scenario, calls: pd.DataFrame, window: F.Window, seed: int) -> list[SloCheck]:
    out = []
    rng = np.random.default_rng(seed)
    for c, key, figure, allowed, judged, missed in misses(sc, calls):
        spec = F.FIGURES[figure]
        (r,) = F.replicates([(calls[calls[F.CLS] == c.name], window)], spec.stat, rng)
        ci = stats.replicate_ci(r, spec.relative)
        ok = math.isfinite(r.value)
        over, runs = int(missed.sum()), episodes(judged, missed, window)
        out.append(
            SloCheck(
                cls=c.name,
                slo=key,
                figure=figure,
                bound=getattr(c.slo, key),
                value=r.value if ok else None,
                lo=ci.lo if ok and math.isfinite(ci.lo) else None,
                hi=ci.hi if ok and math.isfinite(ci.hi) else None,
                decision=decide(over, len(judged), runs, allowed) if ok else "undecided",
                counted=len(judged),
                over=over,
                episodes=runs,
                allowed=allowed,
            )
        )
    return out


def _point(calls: pd.DataFrame, window: F.Window) -> ClassPoint:
    def fig(name: str) -> float | None:
        v = F.value(calls, window, F.FIGURES[name].stat)
        return None if math.isnan(v) else v

    rejected = F.value(calls, window, F.Share(F.REJECTED))
    names = ("latency", "ttft", "itl")
    pcts = {f"{n}_{p}_ms": fig(f"{n}_{p}_ms") for n in names for p in ("p50", "p99")}
    return ClassPoint(
        calls=len(calls),
        goodput_per_s=fig("goodput_per_s") or 0.0,
        error_rate=fig("error_rate"),
        rejected_share=None if math.isnan(rejected) else rejected,
        **pcts,
    )


def judge(load: float, attempts: list[Attempt], sc: Scenario, base: Path, seed: int) -> Probe:
    """The probe's verdict over its (valid) attempts, pooled."""
    calls, window = _pool(attempts)
    checks = _checks(sc, calls, window, seed)
    saturated = next((a.saturated for a in attempts if a.saturated), "")
    if saturated:
        verdict, reason = "saturated", saturated
    elif any(c.decision == "fail" for c in checks):
        verdict = "fail"
        reason = "; ".join(_describe(c) for c in checks if c.decision == "fail")
    elif all(c.decision == "pass" for c in checks):
        verdict, reason = "pass", ""
    else:
        verdict = "undecided"
        reason = "; ".join(_describe(c) for c in checks if c.decision == "undecided")
    goodput = F.value(calls, window, F.FIGURES["goodput_per_s"].stat)
    return Probe(
        load=load,
        attempts=len(attempts),
        verdict=verdict,
        reason=reason,
        run_dirs=[str(a.run_dir.relative_to(base)) for a in attempts],
        measured_s=window.duration_s,
        goodput_per_s=goodput,
        classes={c.name: _point(F.scope_calls(calls, c.name), window) for c in sc.classes},
        checks=checks,
        backlog=any(a.backlog for a in attempts),
    )


def unboundable(sc: Scenario, load: float, search: CapacitySearch) -> list[str]:
    """The percentile SLOs a probe at `load` holds far too few calls to bound (under a quarter
    of what one probe needs: the fit pools a few neighbouring probes, not dozens), one line each
    (open loop: the class's share of the calls times the rate times the judged seconds)."""
    if not sc.open_loop:
        return []
    out = []
    for c in sc.classes:
        for key, (figure, column) in F.SLO_FIGURES.items():
            bound = getattr(c.slo, key) if c.slo is not None else None
            if bound is None or column is None:
                continue
            q = F.FIGURES[figure].stat.q
            need = stats.calls_to_bound(round(1 - q, 6))
            calls = load * _share(sc, c) * search.measure_s
            if calls < need / 4:
                out.append(
                    f"{c.name} {key}: ~{calls:.0f} calls per probe at {load:g} calls/s, a "
                    f"p{q * 100:g} is bounded from ~{need} on: the capacity's lower end will "
                    "likely stay open (use a lower percentile or a longer measure_s)"
                )
    return out


def _describe(c: SloCheck) -> str:
    if c.value is None:
        return f"{c.cls} {c.figure} not measured"
    what = "failed" if c.slo == "error_rate_max" else f"over {c.bound:g}"
    return (
        f"{c.cls} {c.figure} {c.value:.4g}: {c.over} of {c.counted} calls {what} "
        f"in {c.episodes} burst(s), {c.allowed:.0%} allowed"
    )


def settle(platform: Platform | None, timeout: float = SETTLE_TIMEOUT_S) -> bool:
    """Wait until every pod is ready and no queue holds work (what the platform can see)."""
    if platform is None:
        return True
    deadline = time.monotonic() + timeout
    while True:
        try:
            pods = platform.pods()
        except UserError:
            pods = []
        if pods and all(p.ready and not p.queue for p in pods):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.25)


@dataclass
class Prober:
    """Runs probes against one stack; `measure(load)` is what the search calls."""

    scenario: Scenario
    search: CapacitySearch
    target: str
    stack: StackInfo
    platform: Platform | None
    out_dir: Path
    seed: int
    say: Callable[[str], None]
    abort: threading.Event = field(default_factory=threading.Event)
    index: int = 0

    def measure(self, load: float) -> Probe:
        attempts: list[Attempt] = []
        invalid: list[str] = []
        while True:
            a = self._attempt(load, len(attempts) + len(invalid) + 1)
            if self.abort.is_set():
                return Probe.invalid(load, "interrupted")
            if not a.valid:
                invalid.append(a.invalid_reason)
                if len(invalid) > self.search.invalid_retries:
                    reason = f"generator fell behind {len(invalid)} times: {invalid[-1]}"
                    return Probe.invalid(load, reason, [str(a.run_dir.relative_to(self.out_dir))])
                self.say(f"  INVALID ({a.invalid_reason}): running it again")
                continue
            attempts.append(a)
            probe = judge(load, attempts, self.scenario, self.out_dir, self.seed)
            if probe.verdict != "undecided" or len(attempts) > self.search.repeats:
                return probe
            self.say(f"  undecided ({probe.reason}): running it again to pool more calls")

    def _attempt(self, load: float, attempt: int) -> Attempt:
        self.index += 1
        sc = probe_scenario(self.scenario, load, self.search, self.seed + self.index)
        run_dir = self.out_dir / "probes" / f"{self.index:02d}-{load:g}"
        if not settle(self.platform):
            self.say("  warning: the stack did not settle (pods not ready or queues busy) in 30 s")
        write_stack_info(run_dir, self.stack)
        handle = start_scenario(sc, self.target, run_dir)
        stop = threading.Event()
        watch = Watch(sc, load, self.search)
        box: dict[str, str] = {}

        def watcher() -> None:
            try:
                started = handle.wait_load_started()
            except RunFailed:
                return
            while handle.running and not stop.is_set():
                reason = watch.check(read_live(run_dir), time.time(), started)
                if reason or self.abort.is_set():
                    box["reason"] = reason or ""
                    stop.set()
                    return
                self.abort.wait(1.0)

        thread = threading.Thread(target=watcher, name="capacity-watch", daemon=True)
        thread.start()
        try:
            result = handle.wait(None, stop)
        except RunFailed as e:
            raise UserError(str(e)) from None
        finally:
            if handle.running:
                handle.stop()
                handle.kill()
            stop.set()
            thread.join(timeout=5)
        gen = result.summary["generator"]
        measured = result.samples[result.samples["phase"] == MEASURE]
        calls = F.calls_frame(measured, sc)
        t0 = float(measured["intended"].min()) if len(measured) else result.started
        saturated = box.get("reason", "")
        duration = self.search.measure_s
        if saturated and len(measured):  # stopped early: the window is what was sent
            duration = max(float(measured["intended"].max()) - t0, 1.0)
        label = f"probe {self.index}: {load:g} {'calls/s' if sc.open_loop else 'users'}"
        self.say(
            f"{label} (attempt {attempt}) -> {run_dir}"
            + (f": stopped, {saturated}" if saturated else "")
        )
        return Attempt(
            run_dir=run_dir,
            calls=calls,
            window=F.Window(t0, duration),
            valid=bool(gen["valid"]) and len(measured) > 0,
            invalid_reason="; ".join(gen["invalid_reasons"]) or "no call in the measure phase",
            saturated=saturated,
            backlog=watch.growing >= 2,
        )
