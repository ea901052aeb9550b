"""The local twin of the reference deployment: real HAProxy and Prometheus, simulated model pods,
emulated Deployment controller and KEDA/HPA. See docs/twin.md for what is real and what is not."""
