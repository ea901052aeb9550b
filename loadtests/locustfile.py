"""Locust entry point for people: `locust -f loadtests/locustfile.py --host 127.0.0.1:PORT`.

Opens Locust's web UI with one closed-loop user class per traffic class of the scenario named by
$LOADGATE_SCENARIO (default loadtests/scenarios/mixed.yaml). Samples go to $LOADGATE_OUT (default
reports/locust-<time>/) when a test stops. `loadgate run` drives the same users headless, with
open-loop arrivals, through `loadgate.traffic.runner`.
"""

import os
from pathlib import Path

from loadgate.traffic.users import setup

_HERE = Path(__file__).resolve().parent
_scenario = os.environ.get("LOADGATE_SCENARIO") or _HERE / "scenarios" / "mixed.yaml"

globals().update(setup(_scenario))
