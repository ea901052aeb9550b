"""KEDA + HPA emulation: the documented rules as pure functions, and a stateful `Autoscaler`.

KEDA's part (pkg/scaling/executor): a trigger is *active* when its value > activationThreshold;
active at 0 replicas -> scale to max(minReplicaCount, 1); inactive for cooldownPeriod with
minReplicaCount 0 -> scale to 0; inactive below minReplicaCount -> scale to minReplicaCount.
Checked every pollingInterval.

The HPA's part (pkg/controller/podautoscaler), every sync period (15 s):
  replicas outside [min, max] -> clamp; otherwise the metric's recommendation (AverageValue:
  ceil(value / threshold); Value: ceil(ready * value / threshold); none while |ratio - 1| <= 0.1),
  then `behavior`: stabilization (scale-up: the min of the recommendations in the up window,
  scale-down: the max in the down window, current count in between) and rate policies over their
  periods (Pods / Percent, selectPolicy Max / Min / Disabled), then [min, max].

Time is supplied by the caller (`now`, monotonic seconds): no clocks, no sleeping. Every
window, period and interval is multiplied by `time_scale`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from loadgate.twin.spec import AutoscalerSpec, ScalingRules

INT_MAX = 2**31 - 1


# --- pure rules -------------------------------------------------------------------------------


def average_value_replicas(
    value: float, threshold: float, current: int, tolerance: float = 0.1
) -> int:
    """AverageValue target: ceil(value / threshold), unless the per-pod ratio is within tolerance."""
    if current > 0 and abs(value / (threshold * current) - 1.0) <= tolerance:
        return current
    return math.ceil(value / threshold)


def value_replicas(
    value: float, threshold: float, current: int, ready: int | None = None, tolerance: float = 0.1
) -> int:
    """Value target: ceil(ready * value / threshold) (the HPA multiplies by *ready* pods),
    unless value / threshold is within tolerance of 1."""
    ratio = value / threshold
    if current == 0:
        return math.ceil(ratio)
    if abs(ratio - 1.0) <= tolerance:
        return current
    return math.ceil(ratio * (current if ready is None else ready))


def is_active(value: float, activation_threshold: float) -> bool:
    """KEDA's prometheus scaler: active when the value exceeds activationThreshold."""
    return value > activation_threshold


def replicas_changed_within(events: list[tuple[float, int]], now: float, period: float) -> int:
    """Sum of the changes of the scale events strictly newer than now - period."""
    return sum(change for t, change in events if t > now - period)


def replicas_at_period_start(
    current: int,
    ups: list[tuple[float, int]],
    downs: list[tuple[float, int]],
    now: float,
    period: float,
) -> int:
    """Replicas a policy's period began with: undo the scale events within it (the HPA's
    getReplicasChangePerPeriod), so a policy limits the change over its whole period."""
    return (
        current
        - replicas_changed_within(ups, now, period)
        + replicas_changed_within(downs, now, period)
    )


def scale_up_limit(
    current: int,
    ups: list[tuple[float, int]],
    downs: list[tuple[float, int]],
    rules: ScalingRules,
    now: float,
    time_scale: float = 1.0,
) -> int:
    """Highest count the scale-up policies allow now (calculateScaleUpLimitWithScalingRules)."""
    if rules.select_policy == "Disabled":
        return current
    pick = min if rules.select_policy == "Min" else max
    result: int | None = None
    for p in rules.policies:
        start = replicas_at_period_start(current, ups, downs, now, p.period_s * time_scale)
        proposed = start + p.value if p.type == "Pods" else math.ceil(start * (1 + p.value / 100))
        result = proposed if result is None else pick(result, proposed)
    return current if result is None else result


def scale_down_limit(
    current: int,
    ups: list[tuple[float, int]],
    downs: list[tuple[float, int]],
    rules: ScalingRules,
    now: float,
    time_scale: float = 1.0,
) -> int:
    """Lowest count the scale-down policies allow now (calculateScaleDownLimitWithBehaviors).
    Percent rounds down here (int truncation), as the HPA does."""
    if rules.select_policy == "Disabled":
        return current
    pick = max if rules.select_policy == "Min" else min
    result: int | None = None
    for p in rules.policies:
        start = replicas_at_period_start(current, ups, downs, now, p.period_s * time_scale)
        proposed = start - p.value if p.type == "Pods" else int(start * (1 - p.value / 100))
        result = proposed if result is None else pick(result, proposed)
    return current if result is None else result


def stabilize(
    current: int,
    desired: int,
    history: list[tuple[float, int]],
    now: float,
    up_window: float,
    down_window: float,
) -> int:
    """Bring `desired` within [min of recent recommendations (up window), max of recent
    recommendations (down window)], starting from the current count."""
    up = down = desired
    for t, rec in history:
        if t > now - up_window:
            up = min(up, rec)
        if t > now - down_window:
            down = max(down, rec)
    return min(max(current, up), down)


def rate_limit(
    current: int, desired: int, min_replicas: int, max_replicas: int, up_limit: int, down_limit: int
) -> tuple[int, str]:
    """convertDesiredReplicasWithBehaviorRate: apply the policy limits and [min, max]."""
    if desired > current:
        ceiling = min(max_replicas, max(up_limit, current))
        if desired > ceiling:
            return ceiling, "ScaleUpLimit" if ceiling < max_replicas else "TooManyReplicas"
    elif desired < current:
        floor = max(min_replicas, min(down_limit, current))
        if desired < floor:
            return floor, "ScaleDownLimit" if floor > min_replicas else "TooFewReplicas"
    return desired, "DesiredWithinRange"


# --- the stateful controller ------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    time: float  # the caller's `now`
    metric_value: float | None  # as queried (None = empty result)
    current: int  # spec replicas before the decision
    desired: int  # raw recommendation (before stabilization, policies and clamps)
    applied: int  # what to scale to (== current: no change)
    reason: str  # machine-friendly code, e.g. "scale_up", "within_tolerance", "ScaleUpLimit"
    message: str  # the same for humans
    actor: str  # "hpa" | "keda" | "none" (nothing was due at this call)

    @property
    def changed(self) -> bool:
        return self.applied != self.current


@dataclass
class Autoscaler:
    spec: AutoscalerSpec
    time_scale: float = 1.0
    _recommendations: list[tuple[float, int]] = field(default_factory=list)
    _ups: list[tuple[float, int]] = field(default_factory=list)
    _downs: list[tuple[float, int]] = field(default_factory=list)
    _next_hpa: float | None = None
    _next_keda: float | None = None
    _last_active: float | None = None
    _created: float | None = None

    @property
    def interval_s(self) -> float:
        """How often (real seconds) the runner should call `decide`: the faster of KEDA's
        pollingInterval and the HPA sync period, scaled. Each part only acts when it is due."""
        return min(self.spec.polling_interval_s, self.spec.hpa_sync_period_s) * self.time_scale

    @property
    def last_active(self) -> float | None:
        """The caller's `now` at the last decision whose trigger was active (KEDA's
        lastActiveTime), None if never."""
        return self._last_active

    def _due(self, now: float, next_due: float | None) -> bool:
        # A quarter interval of slack absorbs the runner's scheduling jitter.
        return next_due is None or now >= next_due - 0.25 * self.interval_s

    def decide(
        self,
        now: float,
        metric_value: float | None,
        current_replicas: int,
        ready_replicas: int | None = None,
    ) -> Decision:
        """One control step. `current_replicas` is the Deployment's spec replicas (what the HPA
        reads); `ready_replicas` only matters for metricType Value. The caller applies
        `Decision.applied`; the controller records it as done."""
        s = self.spec
        if self._created is None:
            self._created = now
        keda_due, hpa_due = self._due(now, self._next_keda), self._due(now, self._next_hpa)
        if keda_due:
            self._next_keda = now + s.polling_interval_s * self.time_scale
        if hpa_due:
            self._next_hpa = now + s.hpa_sync_period_s * self.time_scale

        def done(desired: int, applied: int, reason: str, message: str, actor: str) -> Decision:
            if applied != current_replicas:
                self._record_event(now, current_replicas, applied)
            return Decision(
                now, metric_value, current_replicas, desired, applied, reason, message, actor
            )

        if metric_value is None and not s.ignore_null_values:
            return done(
                current_replicas,
                current_replicas,
                "metric_error",
                "query returned no data and ignoreNullValues is false: no scaling",
                "keda" if keda_due else "hpa",
            )
        value = 0.0 if metric_value is None else float(metric_value)
        active = is_active(value, s.activation_threshold)
        if active:
            self._last_active = now

        if keda_due:
            # KEDA's executor: 0 <-> 1 and the floor below minReplicaCount.
            if active and current_replicas == 0:
                target = max(s.min_replicas, 1)
                return done(
                    target,
                    target,
                    "activated",
                    f"trigger active ({value:g} > {s.activation_threshold:g}): scale from zero",
                    "keda",
                )
            if not active and current_replicas > 0 and s.min_replicas == 0:
                since = self._last_active if self._last_active is not None else self._created
                cooldown = s.cooldown_period_s if self._last_active is not None else 0.0
                if now - since > cooldown * self.time_scale:
                    return done(
                        0,
                        0,
                        "deactivated",
                        f"trigger inactive for cooldownPeriod ({s.cooldown_period_s:g}s): scale to zero",
                        "keda",
                    )
            if not active and current_replicas < s.min_replicas:
                return done(
                    s.min_replicas,
                    s.min_replicas,
                    "below_min",
                    "trigger inactive and below minReplicaCount",
                    "keda",
                )

        if not hpa_due:
            return Decision(
                now,
                metric_value,
                current_replicas,
                current_replicas,
                current_replicas,
                "waiting",
                "no controller due at this call",
                "keda" if keda_due else "none",
            )
        return self._hpa_step(now, value, metric_value, current_replicas, ready_replicas, done)

    def _hpa_step(self, now, value, metric_value, current, ready, done) -> Decision:
        s = self.spec
        hpa_min = max(s.min_replicas, 1)  # KEDA gives the HPA minReplicas >= 1
        if current == 0:
            return done(
                0, 0, "scaling_disabled", "0 replicas: the HPA is idle until KEDA activates", "hpa"
            )
        if current > s.max_replicas:
            return done(
                s.max_replicas,
                s.max_replicas,
                "above_max",
                "current replicas above maxReplicaCount",
                "hpa",
            )
        if current < hpa_min:
            return done(
                hpa_min, hpa_min, "below_min", "current replicas below minReplicaCount", "hpa"
            )
        if s.metric_type == "AverageValue":
            desired = average_value_replicas(value, s.threshold, current, s.tolerance)
        else:
            desired = value_replicas(value, s.threshold, current, ready, s.tolerance)
        ts = self.time_scale
        stabilized = stabilize(
            current,
            desired,
            self._recommendations,
            now,
            s.scale_up.stabilization_window_s * ts,
            s.scale_down.stabilization_window_s * ts,
        )
        self._recommendations.append((now, desired))
        keep = max(s.scale_up.stabilization_window_s, s.scale_down.stabilization_window_s) * ts
        self._recommendations = [(t, r) for t, r in self._recommendations if t >= now - keep]
        up = scale_up_limit(current, self._ups, self._downs, s.scale_up, now, ts)
        down = scale_down_limit(current, self._ups, self._downs, s.scale_down, now, ts)
        applied, limit = rate_limit(current, stabilized, hpa_min, s.max_replicas, up, down)
        per_pod = value / current
        if s.metric_type == "AverageValue":
            ratio = value / (s.threshold * current)
        else:
            ratio = value / s.threshold
        if applied == current and desired == current:
            reason = "within_tolerance" if abs(ratio - 1.0) <= s.tolerance else "steady"
            msg = f"{value:g} = {per_pod:.1f}/pod vs target {s.threshold:g}: no change"
        elif applied == current and stabilized == current:
            reason = "ScaleUpStabilized" if desired > current else "ScaleDownStabilized"
            msg = f"recommendation {desired} held at {current} by the stabilization window"
        elif limit != "DesiredWithinRange":
            reason, msg = (
                limit,
                f"recommendation {desired} (stabilized {stabilized}) limited to {applied}",
            )
        else:
            reason = (
                "scale_up" if applied > current else "scale_down" if applied < current else "steady"
            )
            msg = f"{value:g} = {per_pod:.1f}/pod vs target {s.threshold:g}: {current} -> {applied}"
        return done(desired, applied, reason, msg, "hpa")

    def _record_event(self, now: float, before: int, after: int) -> None:
        # Scale events feed the policies' periods; drop those older than the longest period.
        if after > before:
            self._ups.append((now, after - before))
        else:
            self._downs.append((now, before - after))
        longest = max(
            p.period_s for p in [*self.spec.scale_up.policies, *self.spec.scale_down.policies]
        )
        cutoff = now - longest * self.time_scale
        self._ups = [e for e in self._ups if e[0] > cutoff]
        self._downs = [e for e in self._downs if e[0] > cutoff]


def prometheus_instant_value(url: str, query: str, timeout: float = 2.0) -> float | None:
    """Run an instant query as KEDA's prometheus scaler does: None for an empty result, an error
    for more than one element (KEDA refuses those), the sample value otherwise."""
    import requests

    resp = requests.get(f"{url.rstrip('/')}/api/v1/query", params={"query": query}, timeout=timeout)
    resp.raise_for_status()
    body = resp.json()
    if body.get("status") != "success":
        raise RuntimeError(f"prometheus query failed: {body.get('error', body)}")
    data = body["data"]
    result = data["result"]
    if data.get("resultType") == "scalar":
        value = float(result[1])
        return value if math.isfinite(value) else None
    if not result:
        return None
    if len(result) > 1:
        raise ValueError(
            f"prometheus query returned {len(result)} elements, KEDA needs exactly one: {query}"
        )
    value = float(result[0]["value"][1])
    return value if math.isfinite(value) else None  # NaN/Inf carry no load figure
