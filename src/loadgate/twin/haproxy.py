"""HAProxy as the twin's L7 proxy: config rendered from the TwinSpec, and its runtime API.

Why these choices (each verified against HAProxy 2.6 in tests/integration/test_twin_proxy.py):
- `proto h2` on the bind and on servers: gRPC over h2c, every stream balanced on its own.
- The breaker (Envoy `max_requests`) is a frontend `http-request deny` on `be_conn(<backend>)`:
  `be_conn` counts the backend's in-flight *streams*, so the (N+1)-th concurrent request is
  answered at once with 503 + `grpc-status: 14`, never queued. Denials are HAProxy's own
  `haproxy_frontend_requests_denied_total`, which Prometheus records as the overflow counter.
- Servers are added and deleted one by one through the runtime API (`add server` / `del server`),
  so other pods' connections and in-flight streams are never touched (no reload).
- Envoy's retry policy maps to L7 retries with `option redispatch 1` (another pod each time).
- `x-upstream-host` is the server's name, and servers are named by their address (ip:port),
  which is what Envoy's %UPSTREAM_HOST% gives; the supervisor maps address -> pod.
"""

from __future__ import annotations

import csv
import io
import socket
from dataclasses import dataclass
from pathlib import Path

from loadgate.twin.spec import TwinSpec

FRONTEND = "grpc_in"
BACKEND = "pods"
STATS_FRONTEND = "stats"

_BALANCE = {"least_request": "leastconn", "round_robin": "roundrobin"}
# Long enough for a 2000-token stream at time_scale 1 (minutes), bounded so nothing hangs forever.
_STREAM_TIMEOUT = "15m"


@dataclass(frozen=True)
class ProxyPorts:
    grpc: int
    stats: int  # Prometheus exporter (/metrics) and the stats page (/stats)


def render_config(spec: TwinSpec, ports: ProxyPorts, socket_path: Path) -> str:
    """haproxy.cfg for the spec. Servers are not in the file: the supervisor adds them at runtime."""
    check_ms = max(50, int(spec.readiness_period_s * 1000))
    breaker = ""
    if spec.max_requests is not None:
        breaker = (
            "    # Envoy circuit breaker max_requests: fail fast instead of queueing.\n"
            # Answer once the request body is complete: a response that ends a stream whose
            # request is still open makes HAProxy send RST_STREAM(CANCEL), which gRPC clients
            # report as CANCELLED; Envoy's trailers-only reply reads as UNAVAILABLE. A client that
            # never half-closes its request stream gets 408 after 200 ms instead (docs/twin.md).
            f"    http-request wait-for-body time 200ms if {{ be_conn({BACKEND}) ge {spec.max_requests} }}\n"
            "    http-request deny deny_status 503 hdr grpc-status 14"
            ' hdr grpc-message "upstream overflow (max_requests)" hdr x-envoy-overloaded true'
            f" if {{ be_conn({BACKEND}) ge {spec.max_requests} }}\n"
        )
    retry = render_retries(spec)
    return f"""# Rendered by loadgate from the TwinSpec; do not edit (regenerated on every boot).
global
    maxconn 4000
    nbthread 1
    # Envoy's downstream HTTP/2 allows 2^31-1 concurrent streams; HAProxy's default of 100 per
    # connection would make a one-channel client queue streams locally, hiding the breaker.
    tune.h2.max-concurrent-streams 4000
    # Buffers large enough for a whole CV request (1x3x224x224 image, 150 KB): the breaker waits
    # for the request body before answering (see below), and a body larger than the buffer
    # would be answered mid-upload, which HAProxy ends with RST_STREAM(CANCEL).
    tune.bufsize 262144
    stats socket {socket_path} mode 600 level admin
    stats timeout 30s

defaults
    mode http
    timeout connect 2s
    timeout client {_STREAM_TIMEOUT}
    timeout server {_STREAM_TIMEOUT}
    timeout http-request 30s
    timeout http-keep-alive 5m
    timeout check {max(50, check_ms - 10)}ms

frontend {FRONTEND}
    bind 127.0.0.1:{ports.grpc} proto h2
{breaker}    default_backend {BACKEND}

backend {BACKEND}
    # Envoy lb_policy {spec.lb_policy.upper()}
    balance {_BALANCE[spec.lb_policy]}
    option httpchk GET /v2/health/ready
    http-check expect status 200
    http-response set-header {spec.served_by_header} %[srv_name]
{retry}    # Trailers-only gRPC errors from the server carry the header too.
    default-server check check-proto h1 inter {check_ms}ms fall 1 rise 1

frontend {STATS_FRONTEND}
    bind 127.0.0.1:{ports.stats}
    http-request use-service prometheus-exporter if {{ path /metrics }}
    stats enable
    stats uri /stats
    stats refresh 2s
"""


# Envoy retry_on -> HAProxy retry-on. `unavailable` (grpc-status 14 in trailers) has no HAProxy
# counterpart: a gRPC server answers HTTP 200 and HAProxy cannot retry on trailers.
_RETRY_ON = {
    "connect-failure": "conn-failure",
    "reset": "empty-response",
    "refused-stream": "empty-response",
}


def render_retries(spec: TwinSpec) -> str:
    """Envoy's route retry policy as HAProxy L7 retries: another pod each time (redispatch), as
    Envoy's previous_hosts predicate does. Breaker rejections are local and never retried."""
    kinds = sorted({_RETRY_ON[r] for r in spec.retry_on if r in _RETRY_ON})
    if spec.num_retries <= 0 or not kinds:
        return "    retries 0\n"
    return (
        f"    # Envoy retry_policy: retry_on {','.join(spec.retry_on)}, num_retries {spec.num_retries}\n"
        f"    retries {spec.num_retries}\n"
        "    option redispatch 1\n"
        f"    retry-on {' '.join(kinds)}\n"
    )


def server_name(address: str) -> str:
    return address  # "127.0.0.1:port": ':' and '.' are legal in HAProxy object names


class RuntimeError_(Exception):
    """The runtime API refused a command."""


class Runtime:
    """HAProxy's runtime API over the stats socket: one short connection per command."""

    def __init__(self, socket_path: Path, timeout: float = 5.0) -> None:
        self.socket_path = str(socket_path)
        self.timeout = timeout

    def command(self, cmd: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(self.timeout)
            s.connect(self.socket_path)
            s.sendall(cmd.encode() + b"\n")
            chunks = []
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
        return b"".join(chunks).decode(errors="replace")

    def _checked(self, cmd: str, ok_markers: tuple[str, ...] = ()) -> str:
        out = self.command(cmd)
        text = out.strip()
        if text and not any(m in text for m in ok_markers):
            raise RuntimeError_(f"haproxy refused '{cmd}': {text.splitlines()[0]}")
        return out

    def add_server(self, address: str, check_port: int) -> None:
        """Add a pod in rotation. Dynamic servers ignore default-server, so spell out every knob."""
        name = server_name(address)
        inter = self._check_inter
        self._checked(
            f"add server {BACKEND}/{name} {address} proto h2 check check-proto h1 port {check_port} "
            f"inter {inter}ms fall 1 rise 1",
            ("New server registered",),
        )
        self._checked(f"enable health {BACKEND}/{name}")
        self._checked(f"enable server {BACKEND}/{name}")

    _check_inter = 200

    def drain_server(self, address: str) -> None:
        """Out of rotation for new streams; in-flight streams continue (state maint)."""
        self._checked(f"disable server {BACKEND}/{server_name(address)}", ("No such server",))

    def delete_server(self, address: str) -> bool:
        """Delete a drained server; False while it still has streams or connections."""
        name = server_name(address)
        out = self.command(f"del server {BACKEND}/{name}").strip()
        return out.startswith("Server deleted") or "No such server" in out

    def stat(self) -> list[dict[str, str]]:
        """`show stat` rows of the pods backend's servers (status, scur, qcur, ...)."""
        out = self.command("show stat")
        lines = out.lstrip("# ").splitlines()
        rows = csv.DictReader(io.StringIO("\n".join(lines)))
        return [
            r for r in rows if r.get("pxname") == BACKEND and r.get("svname") not in ("BACKEND",)
        ]

    def backend_sessions(self) -> int:
        out = self.command("show stat")
        rows = csv.DictReader(io.StringIO("\n".join(out.lstrip("# ").splitlines())))
        for r in rows:
            if r.get("pxname") == BACKEND and r.get("svname") == "BACKEND":
                return int(r.get("scur") or 0)
        return 0
