"""Statistics for comparing runs: pure functions of numpy arrays, seeded generators passed in.

Across runs (each run gives one value of a figure), benchstat's method: each side's median with
a distribution-free confidence interval from order statistics, and a two-sided Mann-Whitney U
test. Too few runs to ever reach alpha is "not enough samples", not a verdict.

Within one run (one run per side), a moving-block bootstrap over time buckets: requests close
in time share the stack's state (a queue, a busy core), so resampling single requests would
understate the noise; resampling runs of consecutive buckets keeps that correlation. Each
figure is reduced to per-bucket sufficient statistics first (a histogram, a sum, a count), so
one bootstrap replicate is a weighted sum of buckets: a matrix product, no Python loop.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

ALPHA = 0.05
CONFIDENCE = 0.95
REPS = 1000  # bootstrap replicates
BIN_RATIO = 1.01  # histogram bins 1 % wide: quantiles within 1 %, far below any floor


@dataclass(frozen=True)
class Interval:
    lo: float
    hi: float
    confidence: float  # what the interval achieves (order statistics: >= the level asked, or less
    # when there are too few values for it)


# -- across runs --------------------------------------------------------------------------------


def median_ci(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, Interval]:
    """Median and the narrowest symmetric order-statistic interval [x(k), x(n+1-k)] whose
    coverage 1 - 2 P(Binom(n, 1/2) < k) reaches `confidence`. Below 6 values no such pair exists
    at 95 %: (min, max) is returned with the confidence it really has."""
    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    if n == 0:
        raise ValueError("median_ci of no values")
    med = float(np.median(x))
    # coverage of [x(k), x(n+1-k)] for k = 1..n//2 (1-based), widest first
    k = np.arange(1, n // 2 + 1)
    coverage = 1.0 - 2.0 * sps.binom.cdf(k - 1, n, 0.5)
    ok = np.nonzero(coverage >= confidence)[0]
    if len(ok) == 0:
        conf = float(coverage[0]) if len(coverage) else 0.0
        return med, Interval(float(x[0]), float(x[-1]), conf)
    i = int(ok[-1])
    return med, Interval(float(x[k[i] - 1]), float(x[n - k[i]]), float(coverage[i]))


def min_mann_whitney_p(n: int, m: int) -> float:
    """The smallest two-sided p-value the exact Mann-Whitney U test can give for sizes n, m
    (complete separation): 2 / C(n + m, n)."""
    if n < 1 or m < 1:
        return 1.0
    return min(1.0, 2.0 / math.comb(n + m, n))


def mann_whitney_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Mann-Whitney U p-value (exact for small samples without ties, else normal
    approximation with tie correction, as scipy chooses). All values equal: 1."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if np.ptp(np.concatenate([a, b])) == 0:
        return 1.0
    return float(sps.mannwhitneyu(a, b, alternative="two-sided", method="auto").pvalue)


# -- within one run: moving-block bootstrap over time buckets -----------------------------------


def block_length(n_buckets: int) -> int:
    """Blocks of about n^(1/3) buckets (the usual order for the moving-block bootstrap), at least
    2 so neighbouring buckets stay together."""
    return max(2, round(n_buckets ** (1 / 3)))


def block_weights(n_buckets: int, reps: int, rng: np.random.Generator) -> np.ndarray:
    """(reps, n_buckets) counts: how often each bucket is drawn in each replicate, drawing
    overlapping blocks of consecutive buckets uniformly until n_buckets are drawn."""
    length = min(block_length(n_buckets), n_buckets)
    blocks = math.ceil(n_buckets / length)
    starts = rng.integers(0, n_buckets - length + 1, size=(reps, blocks))
    idx = (starts[:, :, None] + np.arange(length)).reshape(reps, -1)[:, :n_buckets]
    flat = idx + n_buckets * np.arange(reps)[:, None]
    counts = np.bincount(flat.ravel(), minlength=reps * n_buckets).reshape(reps, n_buckets)
    return counts.astype(float)  # float: the replicates are BLAS matrix products


def bucket_index(times: np.ndarray, t0: float, width: float, n_buckets: int) -> np.ndarray:
    return np.clip(((np.asarray(times) - t0) // width).astype(int), 0, n_buckets - 1)


def log_edges(values: np.ndarray) -> np.ndarray:
    """Histogram edges 1 % apart spanning `values` (positive; zeros are clipped to the smallest
    positive value)."""
    v = np.asarray(values, dtype=float)
    pos = v[v > 0]
    lo = float(pos.min()) if len(pos) else 1e-9
    hi = max(float(v.max()) if len(v) else lo, lo)
    n = max(1, math.ceil(math.log(hi / lo) / math.log(BIN_RATIO)) + 1)
    return lo * BIN_RATIO ** np.arange(-1, n + 1)


def bucket_histograms(
    values: np.ndarray, buckets: np.ndarray, n_buckets: int, edges: np.ndarray
) -> np.ndarray:
    """(n_buckets, bins) counts of `values` per time bucket."""
    bins = len(edges) - 1
    k = np.clip(np.searchsorted(edges, np.maximum(values, edges[0]), side="right") - 1, 0, bins - 1)
    counts = np.bincount(buckets * bins + k, minlength=n_buckets * bins)
    return counts.reshape(n_buckets, bins).astype(float)


def histogram_quantile(hist: np.ndarray, edges: np.ndarray, q: float) -> np.ndarray:
    """Quantile q of each row of `hist` (rows are histograms over `edges`), interpolated
    geometrically inside the bin; NaN for an empty row."""
    hist = np.atleast_2d(hist).astype(float)
    cum = np.cumsum(hist, axis=1)
    total = cum[:, -1]
    target = q * total
    k = np.argmax(cum >= target[:, None], axis=1)
    before = np.where(k > 0, cum[np.arange(len(k)), k - 1], 0.0)
    inside = hist[np.arange(len(k)), k]
    frac = np.divide(target - before, inside, out=np.zeros_like(target), where=inside > 0)
    lo, hi = edges[k], edges[k + 1]
    out = lo * (hi / lo) ** np.clip(frac, 0.0, 1.0)
    return np.where(total > 0, out, np.nan)


@dataclass(frozen=True)
class Replicates:
    """One figure of one run: its value (from every call, exactly), bootstrap replicates (from
    1 %-wide histograms: they only give the spread, intervals are re-centred on the value), and a
    per-bucket series of the figure for the correlation check."""

    value: float
    reps: np.ndarray
    series: np.ndarray

    @property
    def n_buckets(self) -> int:
        return len(self.series)


def quantile_replicates(
    hist: np.ndarray, edges: np.ndarray, q: float, weights: np.ndarray, value: float
) -> Replicates:
    """Quantile q of each replicate's summed histogram; the series is each bucket's median."""
    series = np.log(histogram_quantile(hist, edges, 0.5))  # NaN for an empty bucket
    return Replicates(value, histogram_quantile(weights @ hist, edges, q), series)


def sum_replicates(
    per_bucket: np.ndarray, scale: float, weights: np.ndarray, value: float
) -> Replicates:
    """A per-second rate: the replicate's sum over buckets times `scale` (1 / duration)."""
    per_bucket = np.asarray(per_bucket, dtype=float)
    return Replicates(value, (weights @ per_bucket) * scale, per_bucket)


def share_replicates(
    num: np.ndarray, den: np.ndarray, weights: np.ndarray, value: float
) -> Replicates:
    """A share: the replicate's sum(num) / sum(den) (NaN when den sums to 0)."""
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    dn = weights @ den
    reps = np.divide(weights @ num, dn, out=np.full(len(dn), np.nan), where=dn > 0)
    series = np.divide(num, den, out=np.full(len(den), np.nan), where=den > 0)
    return Replicates(value, reps, series)


def lag1(series: np.ndarray) -> float:
    """Lag-1 autocorrelation of a per-bucket series (empty buckets take the series' mean)."""
    x = np.asarray(series, dtype=float)
    if not np.isfinite(x).any():
        return 0.0
    x = np.where(np.isfinite(x), x, np.nanmean(x))
    x = x - x.mean()
    d = float((x * x).sum())
    return float((x[1:] * x[:-1]).sum() / d) if d > 0 else 0.0


def correlated(series: np.ndarray) -> bool:
    """True when neighbouring buckets are more alike than chance allows (lag-1 autocorrelation
    above 2/sqrt(n)): the noise lasts longer than a block, so no within-run interval is honest."""
    return lag1(series) > 2.0 / math.sqrt(max(len(series), 1))


@functools.lru_cache(maxsize=256)
def widening(n_buckets: int) -> float:
    """How much wider than the bootstrap's own spread an interval must be: a run of n buckets
    holds only B = n / block_length blocks, so the spread is estimated from B values; a
    t quantile with B - 1 degrees of freedom (and the plug-in bias sqrt(B / (B - 1))) keeps the
    coverage at the level asked (checked by tests on synthetic runs)."""
    b = n_buckets / block_length(n_buckets)
    if b <= 1:
        return math.inf
    z = sps.norm.ppf(1 - (1 - CONFIDENCE) / 2)
    return float(sps.t.ppf(1 - (1 - CONFIDENCE) / 2, b - 1) / z * math.sqrt(b / (b - 1)))


def _scale(x: np.ndarray | float, relative: bool) -> np.ndarray | float:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(x) if relative else x


def _unscale(x: float, relative: bool) -> float:
    return math.exp(x) if relative else x


def _widened(point: float, reps: np.ndarray, n_buckets: int) -> tuple[float, float]:
    """Percentile interval of the replicates, re-centred on the point and widened."""
    half = (1 - CONFIDENCE) / 2
    lo, hi = np.quantile(reps, [half, 1 - half])
    centre = float(np.mean(reps))
    k = widening(n_buckets)
    return point + k * (float(lo) - centre), point + k * (float(hi) - centre)


def replicate_ci(r: Replicates, relative: bool) -> Interval:
    """One side's interval (on the log scale for a relative figure, so it stays positive)."""
    x = _scale(r.reps, relative)
    x = x[np.isfinite(x)]
    point = _scale(r.value, relative)
    if len(x) == 0 or not math.isfinite(point):
        return Interval(math.nan, math.nan, 0.0)
    lo, hi = _widened(point, x, r.n_buckets)
    return Interval(_unscale(lo, relative), _unscale(hi, relative), CONFIDENCE)


@dataclass(frozen=True)
class Change:
    """Candidate vs baseline: the change (relative: b/a - 1; absolute: b - a), its confidence
    interval, and a two-sided p-value."""

    change: float
    ci: Interval
    p: float


def bootstrap_change(a: Replicates, b: Replicates, relative: bool) -> Change:
    """The change and its interval from independent replicates of the two sides (log ratio for
    a relative figure), re-centred and widened as `widening` says; p is the level at which that
    interval would first touch "no change"."""
    da = _scale(a.reps, relative)
    db = _scale(b.reps, relative)
    d = db - da
    d = d[np.isfinite(d)]
    point = _scale(b.value, relative) - _scale(a.value, relative)
    if len(d) == 0 or not math.isfinite(point):
        return Change(math.nan, Interval(math.nan, math.nan, 0.0), 1.0)
    k = widening(min(a.n_buckets, b.n_buckets))
    spread = d - float(np.mean(d))
    shifted = point + k * spread
    p = min(1.0, 2.0 * min(float(np.mean(shifted <= 0)), float(np.mean(shifted >= 0))))
    lo, hi = _widened(point, d, min(a.n_buckets, b.n_buckets))
    to_change = (lambda x: math.expm1(x)) if relative else (lambda x: x)
    return Change(to_change(point), Interval(to_change(lo), to_change(hi), CONFIDENCE), p)


# -- across the probes of a capacity search: a monotone curve of a share ----------------------


def episodes(hits_per_bucket: np.ndarray) -> int:
    """Runs of consecutive buckets that hold a hit: misses that come together (one pod full of
    long streams delays every call it takes for a while) are one event, not many."""
    h = np.asarray(hits_per_bucket) > 0
    return int(h[0]) + int(np.count_nonzero(h[1:] & ~h[:-1])) if len(h) else 0


def isotonic(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centred isotonic regression (Oron & Flournoy 2017): pool adjacent points that break a
    non-decreasing y (pool-adjacent-violators, weights w), each pooled group becoming one point
    at its weighted mean x; points must be sorted by x. Equal neighbours stay apart: a run of
    loads with no miss at all stays flat up to its last load (pooled, the curve would start to
    rise from their mean load, below loads that were seen clean). Returns the fitted points."""
    xs: list[float] = []
    ys: list[float] = []
    ws: list[float] = []
    for xi, yi, wi in zip(x, y, w, strict=True):
        xs.append(float(xi) * wi)
        ys.append(float(yi) * wi)
        ws.append(float(wi))
        while len(ys) > 1 and ys[-2] * ws[-1] > ys[-1] * ws[-2]:  # mean before > mean after
            for acc in (xs, ys, ws):
                last = acc.pop()
                acc[-1] += last
    wa = np.asarray(ws)
    return np.asarray(xs) / wa, np.asarray(ys) / wa


def crossing(xs: np.ndarray, ys: np.ndarray, target: float) -> float:
    """The x where the piecewise-linear curve through (xs, ys) first rises above `target`:
    +inf when it never does, -inf when it starts above it."""
    above = np.nonzero(ys > target)[0]
    if len(above) == 0:
        return math.inf
    i = int(above[0])
    if i == 0:
        return -math.inf
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    return float(x0 + (x1 - x0) * (target - y0) / (y1 - y0))


def effective_counts(
    k: np.ndarray | float, n: np.ndarray | float, per_event: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """(k, n) as independent events: misses that come `per_event` at a time (clustered) carry
    the information of k / per_event independent ones out of n / per_event (Kish's design
    effect for cluster samples)."""
    m = np.maximum(1.0, per_event)
    return k / m, n / m


def share_interval(k: float, n: float, confidence: float = CONFIDENCE) -> Interval:
    """Jeffreys interval of a share from k events out of n (fractional counts allowed): the
    posterior Beta(k + 1/2, n - k + 1/2)'s central `confidence`, 0 below when k = 0 and 1 above
    when k = n (Brown, Cai & DasGupta 2001)."""
    if n <= 0:
        return Interval(0.0, 1.0, confidence)
    half = (1 - confidence) / 2
    a, b = k + 0.5, max(n - k, 0.0) + 0.5
    lo = 0.0 if k <= 0 else float(sps.beta.ppf(half, a, b))
    hi = 1.0 if k >= n else float(sps.beta.ppf(1 - half, a, b))
    return Interval(lo, hi, confidence)


@functools.lru_cache(maxsize=64)
def calls_to_bound(allowed: float, confidence: float = CONFIDENCE) -> int:
    """The fewest calls, none of them missing, whose share_interval lies below `allowed`."""
    n = 1
    while share_interval(0.0, float(n), confidence).hi > allowed:
        n *= 2
    lo, hi = n // 2, n
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (
            (lo, mid) if share_interval(0.0, float(mid), confidence).hi <= allowed else (mid, hi)
        )
    return hi


def jeffreys_draws(k: np.ndarray, n: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    """(reps, len(k)) draws of each share from its Jeffreys posterior Beta(k + 1/2, n - k + 1/2)
    (k and n may be fractional: counts of independent events)."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    return rng.beta(k + 0.5, np.maximum(n - k, 0.0) + 0.5, size=(reps, len(k)))
