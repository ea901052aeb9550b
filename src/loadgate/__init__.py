"""loadgate: load-testing and chaos verification for AI inference stacks."""

__version__ = "0.1.0"


def discover(discover_system: bool = True) -> dict:
    """Chaos Toolkit's entry point (`chaos discover --no-install loadgate`): chaoslib resolves a
    distribution name to its top-level package, so discovery must be reachable from here."""
    from loadgate.chaos import discover as chaos_discover

    return chaos_discover(discover_system)
