"""loadgate: load-testing and chaos verification for AI inference stacks."""

__version__ = "0.1.0"
