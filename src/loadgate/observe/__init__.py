"""Reading what the stack knows: Envoy admin, Prometheus, metric text."""
