"""Per-class figures and generator health of a run (pure functions over the samples DataFrame).

Latency and time to first token count from `intended`, the scheduled send, so queueing in the
generator or the stack is never hidden; `start - intended` is the generator's lag. A run whose
generator fell behind (any dropped arrival, or lag p99 over the scenario's limit) is marked
invalid: its latencies describe the generator, not the stack.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from loadgate.errors import one_line
from loadgate.judge import names
from loadgate.judge.outcomes import stop_cancelled
from loadgate.traffic.scenario import Scenario

SUMMARY_FILE = "traffic_summary.json"  # a traffic run's summary, beside samples.parquet
REJECTED = "UNAVAILABLE"  # what a proxy's circuit breaker answers (fail fast)
ERROR_MESSAGES = 20  # distinct error messages listed per class; the rest are counted together
NO_MESSAGE = "(no message recorded)"
AT_STOP = "_at_stop"  # column summarize adds: cancelled at the stop (judge.outcomes), whole run
MIN_IDLE_S = 1.0  # closed loop: no call in flight for longer than this (and the think time)


def _q(s: pd.Series, q: float) -> float | None:
    s = s.dropna()
    return None if s.empty else float(s.quantile(q))


def _at_stop(df: pd.DataFrame) -> pd.Series:
    """Cancelled at the stop, decided over the whole run (a class alone has other last sends)."""
    return df[AT_STOP] if AT_STOP in df else stop_cancelled(df)


def class_figures(df: pd.DataFrame, duration_s: float) -> dict:
    """Figures of one class (or all): errors and the OK share leave out the calls cancelled at
    the stop, which are counted on their own."""
    ok = df[df["status"] == "OK"]
    latency = ok["end"] - ok["intended"]
    ttft = ok["first_byte"] - ok["intended"]
    statuses = df["status"].value_counts().sort_index()
    at_stop = int(_at_stop(df).sum())
    judged = len(df) - at_stop
    return {
        "count": int(len(df)),
        "ok": int(len(ok)),
        "rate": float(len(df) / duration_s) if duration_s > 0 else 0.0,
        "success_ratio": float(len(ok) / judged) if judged else None,
        "latency_p50_s": _q(latency, 0.5),
        "latency_p99_s": _q(latency, 0.99),
        "ttft_p50_s": _q(ttft, 0.5),
        "ttft_p99_s": _q(ttft, 0.99),
        "rejected": int((df["status"] == REJECTED).sum()),
        "errors": int(((df["status"] != "OK") & (df["status"] != REJECTED)).sum()) - at_stop,
        "cancelled_at_stop": at_stop,
        "tokens": int(df["tokens"].sum()),
        "statuses": {str(k): int(v) for k, v in statuses.items()},
        "served_by": int(ok["served_by"].ne("").sum()),
        # Inter-token gaps (streams): median over calls of each call's median gap, and p99 over
        # calls of each call's largest gap. Only when the token_gaps sidecar was joined in.
        "itl_p50_s": _q(ok["itl_p50"], 0.5) if "itl_p50" in ok else None,
        "itl_max_p99_s": _q(ok["itl_max"], 0.99) if "itl_max" in ok else None,
        "error_messages": error_messages(df),
    }


def error_messages(df: pd.DataFrame, limit: int = ERROR_MESSAGES) -> list[dict]:
    """Distinct (status, error text) of the failed calls (not the cancellations at the stop)
    with their counts, most frequent first; a failure without text is NO_MESSAGE; past `limit`
    the remaining messages are one entry with message None."""
    status = df["status"]
    failed = df[(status != names.OK) & (status != names.DROPPED) & ~_at_stop(df)]
    text = failed["error"] if "error" in failed else pd.Series("", index=failed.index)
    failed = failed.assign(error=text.fillna("").replace("", NO_MESSAGE))
    counts = failed.groupby(["status", "error"], sort=False).size()
    counts = counts.sort_values(ascending=False, kind="stable")
    out = [
        {"status": str(st), "message": str(msg), "count": int(n)}
        for (st, msg), n in counts.iloc[:limit].items()
    ]
    if len(counts) > limit:
        out.append({"status": "", "message": None, "count": int(counts.iloc[limit:].sum())})
    return out


def longest_idle_s(df: pd.DataFrame) -> float:
    """The longest span, between the first send and the last end, with no call in flight."""
    if len(df) < 2:
        return 0.0
    order = np.argsort(df["start"].to_numpy(), kind="stable")
    start = df["start"].to_numpy()[order]
    busy_until = np.maximum.accumulate(df["end"].to_numpy()[order])
    return float(max(0.0, np.max(start[1:] - busy_until[:-1])))


def closed_loop_stall(df: pd.DataFrame, scenario: Scenario) -> str:
    """Closed-loop users start each call when they choose (intended == start), so a generator
    that froze shows no send lag: it sends nothing. With users running some call is always in
    flight but for their think time; a longer idle span is the generator's pause."""
    if scenario.open_loop or any(p.users == 0 for p in scenario.phases):
        return ""
    think = max(scenario.closed.wait_s)
    idle = longest_idle_s(df)
    if idle > max(MIN_IDLE_S, 2 * think):
        return f"generator stalled: no call in flight for {idle:.1f} s (users think <= {think:g} s)"
    return ""


def generator_health(
    df: pd.DataFrame, scenario: Scenario, generator: dict, duration_s: float
) -> dict:
    workers = generator.get("workers") or {}
    dropped = sum(int(w.get("dropped", 0)) for w in workers.values())
    scheduled = sum(int(w.get("scheduled", 0)) for w in workers.values())
    unfinished = sum(int(w.get("unfinished", 0)) for w in workers.values())
    lag = df["start"] - df["intended"]
    lag_p99 = _q(lag, 0.99)
    expected = generator.get("expected_arrivals")
    reasons = []
    if scenario.open_loop:
        if dropped:
            reasons.append(
                f"{dropped} arrivals dropped (pool of {scenario.generator.pool_size} full)"
            )
        if lag_p99 is not None and lag_p99 > scenario.generator.max_lag_p99_s:
            reasons.append(
                f"send lag p99 {lag_p99 * 1e3:.1f} ms > {scenario.generator.max_lag_p99_s * 1e3:.0f} ms"
            )
        other = sorted(w for w, st in workers.items() if st.get("scenario_mismatch"))
        if other:
            reasons.append(
                f"{len(other)} worker(s) run a different scenario file than the master and sent "
                f"nothing ({', '.join(other)})"
            )
        cut = sorted(
            w
            for w, st in workers.items()
            if st.get("completed") is False and not st.get("scenario_mismatch")
        )
        if cut and not generator.get("stopped_early"):
            # e.g. a worker machine that quit: the rest of its stream was never sent
            reasons.append(
                f"{len(cut)} of {len(workers)} generator processes stopped before the end of "
                f"their schedule ({', '.join(cut)})"
            )
    if stall := closed_loop_stall(df, scenario):
        reasons.append(stall)
    if unfinished:
        reasons.append(f"{unfinished} calls without a row")
    finals, streams = generator.get("finals"), generator.get("streams")
    if finals is not None and streams is not None and finals < streams:
        reasons.append(f"{streams - finals} of {streams} generator processes never reported")
    return {
        "open_loop": scenario.open_loop,
        "target_rate": (expected / scenario.duration_s) if expected else None,
        "stopped_early": bool(generator.get("stopped_early")),
        "achieved_rate": float(len(df) / duration_s) if duration_s > 0 else 0.0,
        "target_calls": expected,
        "scheduled": scheduled,
        "sent": int(len(df)),
        "achieved_ratio": (len(df) / expected) if expected else None,
        "lag_p50_s": _q(lag, 0.5),
        "lag_p99_s": lag_p99,
        "lag_max_s": _q(lag, 1.0),
        "dropped": dropped,
        "processes": len(workers),
        "valid": not reasons,
        "invalid_reasons": reasons,
    }


def summarize(df: pd.DataFrame, scenario: Scenario, generator: dict) -> dict:
    """summary dict: run window, per-class figures, generator health."""
    # Rates are per second of the send window: the schedule's length for a completed open-loop
    # run, else from the first to the last send (the drain of long calls is not send time).
    if scenario.open_loop and not generator.get("stopped_early") and len(df):
        duration = scenario.duration_s
    elif len(df):
        duration = max(float(df["intended"].max() - df["intended"].min()), 1e-3)
    else:
        duration = 0.0
    df = df.assign(**{AT_STOP: stop_cancelled(df)})
    classes = {str(c): class_figures(g, duration) for c, g in df.groupby("cls", sort=True)}
    return {
        "scenario": scenario.name,
        "arrival": scenario.arrival,
        "duration_s": duration,
        "classes": classes,
        "total": class_figures(df, duration),
        "generator": generator_health(df, scenario, generator, duration),
    }


def _ms(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v * 1e3:.0f}"


def format_table(summary: dict) -> str:
    head = f"{'class':<14}{'count':>7}{'rate/s':>8}{'ok%':>7}{'p50 ms':>9}{'p99 ms':>9}"
    head += f"{'ttft50':>8}{'ttft99':>8}{'itl50':>7}{'rejected':>10}{'errors':>8}{'at stop':>9}"
    lines = [head]
    rows = list(summary["classes"].items()) + [("TOTAL", summary["total"])]
    for name, f in rows:
        ok = "-" if f["success_ratio"] is None else f"{f['success_ratio'] * 100:.1f}"
        lines.append(
            f"{name:<14}{f['count']:>7}{f['rate']:>8.1f}{ok:>7}{_ms(f['latency_p50_s']):>9}"
            f"{_ms(f['latency_p99_s']):>9}{_ms(f['ttft_p50_s']):>8}{_ms(f['ttft_p99_s']):>8}"
            f"{_ms(f.get('itl_p50_s')):>7}{f['rejected']:>10}{f['errors']:>8}"
            f"{f.get('cancelled_at_stop', 0):>9}"
        )
    messages = summary["total"].get("error_messages") or []
    if messages:
        lines.append("errors by message:")
        for m in messages:
            text = m["message"] if m["message"] is not None else "(other messages)"
            lines.append(f"{m['count']:>9}  {m['status']:<18}{text}")
    g = summary["generator"]
    target = "-" if g["target_rate"] is None else f"{g['target_rate']:.1f}/s"
    verdict = "valid" if g["valid"] else "INVALID: " + "; ".join(g["invalid_reasons"])
    lines.append(
        f"generator: {g['sent']} calls, achieved {g['achieved_rate']:.1f}/s (target {target}), "
        f"lag p50 {_ms(g['lag_p50_s'])} ms p99 {_ms(g['lag_p99_s'])} ms, dropped {g['dropped']}, "
        f"{g['processes']} process(es): {verdict}"
    )
    if summary.get("status"):  # loadgate run's verdict (traffic.verdict)
        lines.append(f"run: {summary['status']}: {summary.get('status_reason', '')}")
    return "\n".join(lines)


def progress_line(recent: pd.DataFrame, window_s: float, elapsed_s: float, sc: Scenario) -> str:
    """One progress line from the rows of the last `window_s` seconds: the phase the schedule is
    in (not the phase of the last call to finish, which lags behind with long streams), and once
    every phase has ended, that the run is draining the calls still in flight."""
    phase = sc.phase_at(elapsed_s)
    if phase is None:
        head = f"[{elapsed_s:5.0f}s, {sc.duration_s:.0f}s scheduled] draining in-flight calls"
    else:
        head = f"[{elapsed_s:5.0f}/{sc.duration_s:.0f}s] phase {phase}"
    if recent.empty:
        return f"{head}: no call finished in the last {window_s:.0f}s"
    n = len(recent)
    at_stop = stop_cancelled(recent)
    errors = int(((recent["status"] != "OK") & ~at_stop).sum())
    rejected = int((recent["status"] == REJECTED).sum())
    line = (
        f"{head}: {n / window_s:.1f} calls/s finished, "
        f"{errors} errors ({rejected} rejected) in the last {window_s:.0f}s"
    )
    if at_stop.any():
        line += f", {int(at_stop.sum())} cancelled at the stop"
    top = error_messages(recent, limit=1)
    if top and top[0]["message"] is not None:  # say what fails, not only how often
        line += f"; most: {top[0]['count']} {top[0]['status']} {one_line(top[0]['message'], 80)}"
    return line
