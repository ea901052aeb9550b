"""Analysis of a run: pure functions, DataFrames (samples, timeline) in, typed figures out.

Each module is one concern; a gate is one call here plus `verdict.check` on its headline figure.
Metric and label names are parameters with defaults in `names`; see docs/judge.md.
"""

from loadgate.judge.accounting import AccountingResult, accounting
from loadgate.judge.balance import BalanceResult, balance
from loadgate.judge.failfast import FailFastResult, failfast, recovery_time
from loadgate.judge.inflight import Agreement, crosscheck, inflight_at, inflight_mean
from loadgate.judge.latency import (
    GeneratorHealth,
    generator_health,
    latency_percentiles,
    status_rates,
)
from loadgate.judge.readiness import ReadinessResult, readiness, transitions
from loadgate.judge.scaling import ScalingResult, demanded_replicas, replicas_frame, scaling
from loadgate.judge.verdict import Verdict, check

__all__ = [
    "AccountingResult",
    "Agreement",
    "BalanceResult",
    "FailFastResult",
    "GeneratorHealth",
    "ReadinessResult",
    "ScalingResult",
    "Verdict",
    "accounting",
    "balance",
    "check",
    "crosscheck",
    "demanded_replicas",
    "failfast",
    "generator_health",
    "inflight_at",
    "inflight_mean",
    "latency_percentiles",
    "readiness",
    "recovery_time",
    "replicas_frame",
    "scaling",
    "status_rates",
    "transitions",
]
