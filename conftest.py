"""Root conftest: shared by loadtests/ (the gate) and tests/ (loadgate's own tests).

The gate's pytest plugin is registered here because pytest only honours `pytest_plugins` in the
root conftest. It stays inert (no import beyond pytest) unless the run is on loadtests/ or names
a gate option, so tests/ is not slowed by it.
"""

pytest_plugins = ["loadgate.gate.plugin"]
