"""Traffic: Locust gRPC users over KServe v2, open- and closed-loop arrivals, per-request samples.

Import-light on purpose: nothing here imports gevent or Locust, so the gate and the chaos extension
can use `scenario`, `runner`, `live` and `summary` in their own (unpatched) processes. Only
`users` and `locustfile` run inside Locust's processes.
"""
