"""Synthetic runs for the statistics' honesty tests: seeded, with the noise real runs have.

A run's calls share the stack's state second by second (a queue, a busy core): each 1 s bucket
gets a load factor from an AR(1) process (`phi` = correlation from one second to the next, `sd`
= its spread on the log scale), and each call its own lognormal noise (`sigma`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from loadgate.regression import figures as F
from loadgate.regression.figures import ITL, TTFT, T
from loadgate.regression.probe import decide
from loadgate.regression.result import Probe, SloCheck


def load_factors(rng: np.random.Generator, n: int, phi: float, sd: float) -> np.ndarray:
    e = rng.normal(size=n)
    z = np.empty(n)
    z[0] = e[0]
    for i in range(1, n):  # n is a few dozen buckets, not calls
        z[i] = phi * z[i - 1] + np.sqrt(1 - phi**2) * e[i]
    return np.exp(sd * z)


def run_calls(
    rng: np.random.Generator,
    seconds: int = 60,
    rate: float = 15.0,
    phi: float = 0.0,
    sd: float = 0.1,
    sigma: float = 0.3,
    scale: float = 1.0,
    t0: float = 1.7e9,
) -> tuple[pd.DataFrame, F.Window]:
    """One stream class: latency, TTFT and ITL per call (ms), all multiplied by `scale`."""
    counts = rng.poisson(rate, seconds)
    bucket = np.repeat(np.arange(seconds), counts)
    t = t0 + bucket + rng.random(len(bucket))
    load = load_factors(rng, seconds, phi, sd)[bucket]
    noise = rng.lognormal(0.0, sigma, len(bucket))
    ttft = scale * 40.0 * load * noise
    itl = scale * 2.0 * load * rng.lognormal(0.0, sigma / 3, len(bucket))
    calls = pd.DataFrame(
        {
            F.T: t,
            F.CLS: "llm",
            F.OK: True,
            F.FAILED: False,
            F.REJECTED: False,
            F.GOOD: True,
            F.LATENCY: ttft + 49 * itl,
            F.TTFT: ttft,
            F.ITL: itl,
            F.TOKENS: 50.0,
        }
    )
    return calls, F.Window(t0, float(seconds))


# -- whole run directories, as `loadgate run` writes them ------------------------------------------

SCENARIO = {
    "name": "synthetic",
    "arrival": "poisson",
    "classes": [
        {
            "name": "llm",
            "model": "llm",
            "kind": "llm_stream",
            "weight": 1,
            "slo": {"ttft_p99_ms": 200, "itl_p99_ms": 10},
        },
        {"name": "cv", "model": "cv", "kind": "cv", "weight": 1, "slo": {"latency_p99_ms": 80}},
    ],
    "phases": [{"name": "steady", "duration_s": 60, "rate": 30}],
}


def write_run(
    path,
    rng: np.random.Generator,
    slow: float = 1.0,
    seconds: int = 60,
    rate: float = 15.0,
    scenario: dict | None = None,
    stack: dict | None = None,
    valid: bool = True,
    t0: float = 1.7e9,
):
    """A traffic run directory: `rate` calls/s of each class, LLM TTFT ~40 ms and ITL ~2 ms,
    CV latency ~10 ms; `slow` multiplies the LLM's TTFT and ITL (a slower model)."""
    import json

    from loadgate.schema import SAMPLE_COLUMNS, write_samples
    from loadgate.traffic.scenario import Scenario
    from loadgate.traffic.stacks import StackInfo, write_stack_info

    llm, _ = run_calls(rng, seconds=seconds, rate=rate, scale=slow, t0=t0)
    cv, _ = run_calls(rng, seconds=seconds, rate=rate, t0=t0)
    n_llm, n_cv = len(llm), len(cv)
    intended = np.concatenate([llm[T].to_numpy(), cv[T].to_numpy()])
    first = np.concatenate([llm[T] + llm[TTFT] / 1e3, cv[T] + cv[TTFT] / 4e3])
    end = np.concatenate([first[:n_llm] + 49 * llm[ITL] / 1e3, first[n_llm:]])
    samples = pd.DataFrame(
        {
            "intended": intended,
            "start": intended + 0.001,
            "first_byte": first,
            "end": end,
            "cls": ["llm"] * n_llm + ["cv"] * n_cv,
            "model": ["llm"] * n_llm + ["cv"] * n_cv,
            "status": "OK",
            "served_by": "127.0.0.1:9000",
            "tokens": [50] * n_llm + [0] * n_cv,
            "bytes": 100,
            "phase": "steady",
            "worker": "w",
            "request_id": "",
            "error": "",
        }
    )[SAMPLE_COLUMNS].sort_values("intended")
    path.mkdir(parents=True, exist_ok=True)
    write_samples(samples, path / "samples.parquet")
    sc = Scenario.model_validate(scenario or SCENARIO)
    (path / "scenario.yaml").write_text(sc.to_yaml())
    reasons = [] if valid else ["send lag p99 80.0 ms > 50 ms"]
    summary = {"generator": {"valid": valid, "invalid_reasons": reasons, "stopped_early": False}}
    (path / "traffic_summary.json").write_text(json.dumps(summary))
    write_stack_info(
        path, StackInfo(**(stack or {"kind": "twin", "target": "t", "time_scale": 0.1}))
    )
    return path


def probe_of(load: float, over: int, counted: int, bursts: int, allowed: float, q: int) -> Probe:
    """A capacity probe of one llm SLO (ttft_pQ_ms, bound 100 ms) judged as loadgate judges it:
    `over` of `counted` calls over the bound, in `bursts` runs of seconds."""
    decision = decide(over, counted, bursts, allowed)
    value = 150.0 if over > allowed * counted else 50.0  # the percentile over or within it
    key = f"ttft_p{q}_ms"
    check = SloCheck(
        cls="llm",
        slo=key,
        figure=key,
        bound=100.0,
        value=value,
        lo=value * 0.9,
        hi=value * 1.1,
        decision=decision,
        counted=counted,
        over=over,
        episodes=bursts,
        allowed=allowed,
    )
    return Probe(
        load=load, attempts=1, verdict=decision, run_dirs=[], measured_s=15.0, checks=[check]
    )
