"""Safety: chaos on a real cluster is opt-in, and a dry run says what would be done.

- Kubernetes: refused unless "<context>/<namespace>" matches an entry of loadgate.yaml's
  `kubernetes.allowed` (the Kubernetes engineer's `ensure_allowed`), checked before any load
  starts, and again by the platform on every kill/scale.
- `describe_plan()` renders an experiment's hypothesis, method and rollbacks with their
  arguments after configuration substitution, for `loadgate gameday --dry-run`.
- Interruption: chaoslib turns Ctrl-C into status "interrupted" and still plays rollbacks when
  the strategy is `always`; the control stops the load in `after_experiment_control` and again
  in `cleanup_control` (see control.py).
"""

from __future__ import annotations

from typing import Any

from loadgate.errors import UserError
from loadgate.platform.base import Platform
from loadgate.platform.kubeconfig import ensure_allowed


def ensure_chaos_allowed(platform: Platform) -> None:
    """UserError unless chaos may act on this platform (the twin is always allowed)."""
    if platform.name != "kubernetes":
        return
    context = getattr(platform, "context", "")
    namespace = getattr(platform, "namespace", "")
    try:
        ensure_allowed(context, namespace, getattr(platform, "allowed", []))
    except UserError as e:
        raise UserError(f"chaos refused: {e}") from None


def _args(provider: dict[str, Any]) -> str:
    args = provider.get("arguments") or {}
    return ", ".join(f"{k}={v!r}" for k, v in args.items())


def describe_activity(activity: dict[str, Any]) -> str:
    provider = activity.get("provider") or {}
    kind = activity.get("type", "?")
    where = f"{provider.get('module', '?')}.{provider.get('func', '?')}"
    if provider.get("type") != "python":
        where = f"{provider.get('type', '?')} provider"
    line = f"{kind} {activity.get('name', '?')}: {where}({_args(provider)})"
    if "tolerance" in activity:
        line += f"  tolerance {activity['tolerance']!r}"
    if activity.get("background"):
        line += "  [background]"
    pauses = activity.get("pauses") or {}
    if pauses:
        line += f"  pauses {pauses}"
    return line


def describe_plan(experiment: dict[str, Any], configuration: dict[str, Any]) -> list[str]:
    """Human-readable plan of an experiment, arguments substituted from `configuration`."""
    from chaoslib import substitute

    exp = substitute(experiment, configuration, None)
    lines = [f"experiment: {exp.get('title', '?')}"]
    ssh = exp.get("steady-state-hypothesis") or {}
    if ssh.get("probes"):
        lines.append(f"steady-state hypothesis: {ssh.get('title', '')} (before and after)")
        lines += [f"  - {describe_activity(a)}" for a in ssh["probes"]]
    lines.append("method:")
    lines += [f"  - {describe_activity(a)}" for a in exp.get("method") or []]
    rollbacks = exp.get("rollbacks") or []
    strategy = (exp.get("runtime") or {}).get("rollbacks", {}).get("strategy", "default")
    lines.append(f"rollbacks (strategy {strategy}):")
    lines += [f"  - {describe_activity(a)}" for a in rollbacks] or ["  (none)"]
    return lines
