"""The figures a regression comparison and a capacity probe look at, defined once.

Each figure has one spec: its unit, which direction is better, whether a change is relative (%)
or absolute (a share), and how it is computed from the per-call frame. Per-call figures count
from the scheduled send (coordinated-omission free); latency, TTFT and ITL are over successful
calls only, failures show in `error_rate`. A call's ITL is its mean gap per token after the first,
(end - first_byte) / (tokens - 1): vLLM's TPOT, which does not depend on how many tokens the
server puts in one stream message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from loadgate.judge import names
from loadgate.regression import stats
from loadgate.traffic.scenario import SLO_PERCENTILES, Kind, Scenario

Better = Literal["lower", "higher"]
ALL = "all"  # the scope of figures over every class

# per-call frame columns
T, CLS, OK, GOOD, FAILED, REJECTED = "t", "cls", "ok", "good", "failed", "rejected"
LATENCY, TTFT, ITL, TOKENS = "latency_ms", "ttft_ms", "itl_ms", "tokens"


@dataclass(frozen=True)
class Quantile:
    column: str  # NaN where the call does not count (failed, or not a stream)
    q: float


@dataclass(frozen=True)
class Rate:
    """Per second of the window: the sum of `column` (or the count, None) over calls where
    `mask` is true."""

    mask: str
    column: str | None = None


@dataclass(frozen=True)
class Share:
    """Share of calls where `mask` is true (e.g. failed)."""

    mask: str


Stat = Quantile | Rate | Share


@dataclass(frozen=True)
class FigureSpec:
    name: str
    unit: str
    better: Better
    stat: Stat | None = None  # None: read from a gate summary or a capacity result
    relative: bool = True  # change in % of the baseline; False: a difference (shares)
    gating: bool = False  # gates `loadgate compare` by default (exit 1 when it regressed)


def _spec(name: str, unit: str, better: Better, stat: Stat, **kw) -> FigureSpec:
    return FigureSpec(name, unit, better, stat, **kw)


SLO_ONLY = tuple(p for p in SLO_PERCENTILES if p != 99)  # figures for SLOs, not comparisons
FIGURES: dict[str, FigureSpec] = {
    f.name: f
    for f in (
        _spec("latency_p50_ms", "ms", "lower", Quantile(LATENCY, 0.5)),
        _spec("latency_p99_ms", "ms", "lower", Quantile(LATENCY, 0.99), gating=True),
        *(_spec(f"latency_p{p}_ms", "ms", "lower", Quantile(LATENCY, p / 100)) for p in SLO_ONLY),
        _spec("ttft_p50_ms", "ms", "lower", Quantile(TTFT, 0.5)),
        *(_spec(f"ttft_p{p}_ms", "ms", "lower", Quantile(TTFT, p / 100)) for p in SLO_ONLY),
        _spec("ttft_p99_ms", "ms", "lower", Quantile(TTFT, 0.99), gating=True),
        _spec("itl_p50_ms", "ms", "lower", Quantile(ITL, 0.5)),
        *(_spec(f"itl_p{p}_ms", "ms", "lower", Quantile(ITL, p / 100)) for p in SLO_ONLY),
        _spec("itl_p99_ms", "ms", "lower", Quantile(ITL, 0.99), gating=True),
        _spec("tokens_per_s", "tokens/s", "higher", Rate(OK, TOKENS)),
        _spec("goodput_per_s", "calls/s", "higher", Rate(GOOD), gating=True),
        _spec("error_rate", "", "lower", Share(FAILED), relative=False, gating=True),
    )
}
CAPACITY = FigureSpec("capacity", "", "higher", gating=True)

# Which figures a class of each kind has (a CV call has no tokens, a unary call no first token);
# the SLO-only percentiles are there for SLOs, comparisons show p50 and p99.
KIND_FIGURES: dict[Kind, tuple[str, ...]] = {
    "llm_stream": tuple(f for f in FIGURES if not any(f"_p{p}_" in f for p in SLO_ONLY)),
    "llm_unary": (
        "latency_p50_ms",
        "latency_p99_ms",
        "tokens_per_s",
        "goodput_per_s",
        "error_rate",
    ),
    "cv": ("latency_p50_ms", "latency_p99_ms", "goodput_per_s", "error_rate"),
}
TOTAL_FIGURES = ("tokens_per_s", "goodput_per_s", "error_rate")

# SLO key -> (figure it limits, per-call column it bounds). error_rate_max bounds no call.
SLO_FIGURES: dict[str, tuple[str, str | None]] = {
    **{
        f"{name}_p{p}_ms": (f"{name}_p{p}_ms", column)
        for name, column in (("ttft", TTFT), ("itl", ITL), ("latency", LATENCY))
        for p in SLO_PERCENTILES
    },
    "error_rate_max": ("error_rate", None),
}


def better_of(comparison: str) -> Better | None:
    """A gate threshold's direction: `<=` means lower is better. `==` has none."""
    if comparison.startswith("<"):
        return "lower"
    if comparison.startswith(">"):
        return "higher"
    return None


def figures_of(scenario: Scenario) -> list[tuple[str, str]]:
    """(scope, figure) pairs a run of `scenario` has: per class by kind, then over all classes."""
    out = [(c.name, f) for c in scenario.classes for f in KIND_FIGURES[c.kind]]
    return out + [(ALL, f) for f in TOTAL_FIGURES]


# -- the per-call frame ---------------------------------------------------------------------------


def calls_frame(samples: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    """One row per call sent: scheduled time, class, OK, goodput (OK and within every per-call
    bound of its class's SLO), latency / TTFT / ITL in ms (NaN where they do not apply), tokens.
    CANCELLED calls are left out: only the generator cancels (at the end of a closed-loop run,
    or when a run is stopped), so they say nothing about the stack."""
    s = samples[~samples["status"].isin((names.DROPPED, names.CANCELLED))]
    kinds = {c.name: c.kind for c in scenario.classes}
    ok = (s["status"] == names.OK).to_numpy()
    stream = s["cls"].map(kinds).eq("llm_stream").to_numpy()
    intended, first, end = (s[c].to_numpy(dtype=float) for c in ("intended", "first_byte", "end"))
    tokens = s["tokens"].to_numpy(dtype=float)
    latency = np.where(ok, (end - intended) * 1e3, np.nan)
    ttft = np.where(ok & stream, (first - intended) * 1e3, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        itl = np.where(ok & stream & (tokens >= 2), (end - first) * 1e3 / (tokens - 1), np.nan)
    frame = pd.DataFrame(
        {
            T: intended,
            CLS: s["cls"].to_numpy(),
            OK: ok,
            FAILED: ~ok,
            REJECTED: s["status"].isin(names.REJECTED).to_numpy(),
            LATENCY: latency,
            TTFT: ttft,
            ITL: itl,
            TOKENS: np.where(ok, tokens, 0.0),
        }
    )
    good = ok.copy()
    for slo_key, (_, column) in SLO_FIGURES.items():
        if column is None:
            continue
        bounds = {c.name: getattr(c.slo, slo_key) for c in scenario.classes if c.slo is not None}
        bound = frame[CLS].map(bounds).to_numpy(dtype=float)  # NaN: no bound for that class
        value = frame[column].to_numpy()
        good &= ~(np.isfinite(bound) & np.isfinite(value) & (value > bound))
    frame[GOOD] = good
    return frame


def scope_calls(calls: pd.DataFrame, scope: str) -> pd.DataFrame:
    return calls if scope == ALL else calls[calls[CLS] == scope]


# -- one run's value of a figure ------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """The span a run's figures cover: rates are per second of it, buckets tile it."""

    t0: float
    duration_s: float

    @property
    def n_buckets(self) -> int:
        return max(1, round(self.duration_s / BUCKET_S))


BUCKET_S = 1.0


def value(calls: pd.DataFrame, window: Window, stat: Stat) -> float:
    """The figure over all calls of the frame (NaN when nothing counts)."""
    if isinstance(stat, Quantile):
        v = calls[stat.column].to_numpy(dtype=float)
        v = v[np.isfinite(v)]
        return float(np.quantile(v, stat.q)) if len(v) else math.nan
    if isinstance(stat, Rate):
        mask = calls[stat.mask].to_numpy(dtype=bool)
        amount = mask if stat.column is None else calls[stat.column].to_numpy() * mask
        return float(np.sum(amount) / window.duration_s) if window.duration_s > 0 else math.nan
    n = len(calls)
    return float(calls[stat.mask].to_numpy(dtype=bool).sum() / n) if n else math.nan


def counted(calls: pd.DataFrame, stat: Stat) -> int:
    """How many calls the figure is computed from."""
    if isinstance(stat, Quantile):
        return int(np.isfinite(calls[stat.column].to_numpy(dtype=float)).sum())
    return len(calls)


def min_count(stat: Stat) -> int:
    """Calls a single-run verdict needs: a p99 from fewer than ~300 calls is a few largest
    values (no distribution-free 95 % bound on it exists below that)."""
    if isinstance(stat, Quantile):
        return max(20, math.ceil(3 / (1 - stat.q)))
    return 20


def replicates(
    sides: list[tuple[pd.DataFrame, Window]], stat: Stat, rng: np.random.Generator
) -> list[stats.Replicates]:
    """Moving-block bootstrap replicates of one figure for each (calls, window), sharing one
    histogram grid so identical sides give identical replicates' distribution."""
    out = []
    edges = None
    if isinstance(stat, Quantile):
        pooled = np.concatenate([c[stat.column].to_numpy(dtype=float) for c, _ in sides])
        edges = stats.log_edges(pooled[np.isfinite(pooled)])
    for calls, window in sides:
        n = window.n_buckets
        bucket = stats.bucket_index(calls[T].to_numpy(), window.t0, BUCKET_S, n)
        weights = stats.block_weights(n, stats.REPS, rng)
        point = value(calls, window, stat)
        if isinstance(stat, Quantile):
            v = calls[stat.column].to_numpy(dtype=float)
            keep = np.isfinite(v)
            hist = stats.bucket_histograms(v[keep], bucket[keep], n, edges)
            out.append(stats.quantile_replicates(hist, edges, stat.q, weights, point))
        elif isinstance(stat, Rate):
            mask = calls[stat.mask].to_numpy(dtype=bool)
            amount = mask.astype(float) if stat.column is None else calls[stat.column] * mask
            per_bucket = np.bincount(bucket, weights=np.asarray(amount, float), minlength=n)
            out.append(stats.sum_replicates(per_bucket, 1.0 / window.duration_s, weights, point))
        else:
            hit = calls[stat.mask].to_numpy(dtype=float)
            num = np.bincount(bucket, weights=hit, minlength=n)
            den = np.bincount(bucket, minlength=n).astype(float)
            out.append(stats.share_replicates(num, den, weights, point))
    return out
