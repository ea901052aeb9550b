"""loadgate's Chaos Toolkit extension: faults and probes for an inference stack under load.

- `loadgate.chaos.actions`: kill_pods, flood_queue, scale, restore_replicas, stop_floods
- `loadgate.chaos.probes`: success_rate, latency_percentile, rejection_latency, ready_replicas,
  replicas_restored, pod_ready, scaled_object_status
- `loadgate.chaos.control`: background load for the whole experiment, events in the timeline

The experiment's `configuration` selects the platform (platforms.py); see docs/chaos.md.
"""

from typing import Any

__all__ = ["discover"]


def discover(discover_system: bool = True) -> dict[str, Any]:
    """Chaos Toolkit discovery: every action and probe of the extension with its arguments and
    docs (`chaos discover --no-install loadgate`)."""
    from chaoslib.discovery.discover import (
        discover_actions,
        discover_probes,
        initialize_discovery_result,
    )

    from loadgate import __version__

    result = initialize_discovery_result("loadgate", __version__, "inference-stack")
    result["activities"].extend(discover_actions("loadgate.chaos.actions"))
    result["activities"].extend(discover_probes("loadgate.chaos.probes"))
    return result
