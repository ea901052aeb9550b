"""Simulated KServe v2 / Triton model server: real gRPC protocol, simulated accelerator.

Layout: `latency` (durations), `batching` (queues, pure), `readiness` (hysteresis), `engine`
(the accelerator on asyncio), `models` (validation, responses), `grpc_service`, `http_server`,
`metrics`, `server` (wiring, SIGTERM), `config` (flags + YAML), `process` (spawn it from Python).
"""
