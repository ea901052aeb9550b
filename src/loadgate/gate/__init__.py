"""The gate: `loadgate gate` runs every gate of the catalogue (loadtests/) against a stack and
writes one report.

| module | holds |
|---|---|
| `catalogue` | the gates, their figures (direction, meaning, source) and judge parameters |
| `config` | loadgate.yaml's models and loading (thresholds and params checked against the catalogue) |
| `stack` | the stack a session runs against: `TwinStack` or `ClusterStack` |
| `session` | one run directory: every gate's run, the files written at the end |
| `run` | one gate's load, samples, proxy records, timeline and verdicts |
| `plugin` | the pytest plugin (fixtures `run_gate`, `gate_session`, `gate_config`) |
| `cli` | the `loadgate gate` command |
"""
