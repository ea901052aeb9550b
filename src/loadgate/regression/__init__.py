"""Regression benchmarking: capacity under SLOs (`loadgate capacity`), run-to-run comparison
with honest statistics (`loadgate compare`), and named baselines (`loadgate baseline`).

Modules: `stats` (pure statistics), `figures` (what is measured, defined once), `rundir` (run
directories of every kind -> typed runs), `compare` (verdicts), `probe` and `capacity` (the SLO
search), `result` (capacity.json), `baseline`, `text` and `html` (output), `cli`.
"""

from pathlib import Path

BASELINES_DIR = Path("baselines")  # where `loadgate baseline save NAME` puts NAME/
