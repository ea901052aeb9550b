"""Synthetic runs for the statistics' honesty tests: seeded, with the noise real runs have.

A run's calls share the stack's state second by second (a queue, a busy core): each 1 s bucket
gets a load factor from an AR(1) process (`phi` = correlation from one second to the next, `sd`
= its spread on the log scale), and each call its own lognormal noise (`sigma`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from loadgate.regression import figures as F


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
            F.GOOD: True,
            F.LATENCY: ttft + 49 * itl,
            F.TTFT: ttft,
            F.ITL: itl,
            F.TOKENS: 50.0,
        }
    )
    return calls, F.Window(t0, float(seconds))
