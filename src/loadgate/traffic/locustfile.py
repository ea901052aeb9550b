"""The locustfile `loadgate run` starts Locust with (loadtests/locustfile.py is the same for
people who run `locust -f` themselves). The scenario comes from $LOADGATE_SCENARIO."""

import os
from pathlib import Path

from loadgate.traffic.users import setup

DEFAULT_SCENARIO = Path("loadtests/scenarios/mixed.yaml")

globals().update(setup(os.environ.get("LOADGATE_SCENARIO") or DEFAULT_SCENARIO))
