"""The local twin of the reference deployment: the real Envoy running the shipped bootstrap, real
Prometheus, simulated model pods, emulated Deployment controller, kubelet readiness probes,
EndpointSlices and KEDA/HPA. See docs/twin.md for what is real and what is not."""
