"""gRPC calls over HTTP/2 under gevent: the socket side of `h2_protocol` (Locust processes only).

A `Channel` holds one connection to the target at a time (like a grpcio channel: one HTTP/2
connection, every call a stream on it). One reader greenlet per connection reads whatever the
socket has, hands it to the protocol core with the read's time, and writes what the core wants
sent; a call's `done` callback runs right there, so a call costs no greenlet, thread or future
of its own. A deadline is one libev timer per call (a greenlet only when it fires). After a
GOAWAY new calls go to a new connection and calls the server never processed are sent again
there; a lost connection ends its calls UNAVAILABLE, and the next call connects again (at most
once a second while connecting fails, so an unreachable target is not hammered).
"""

from __future__ import annotations

import socket
import ssl
import time

import gevent
from gevent import get_hub

from loadgate.traffic.h2_protocol import Call, Connection, ProtocolError, end_call, literal
from loadgate.traffic.scenario import Tls

READ_SIZE = 1 << 18
# A socket that always has data never blocks the reader, so it would never let the hub run
# timers (the open-loop scheduler's next send): the reader hands the hub a turn at least this
# often, feeding a large read in slices (each slice's frames keep the read's arrival time).
YIELD_EVERY_S = 0.0005
SLICE = 4096
CONNECT_TIMEOUT_S = 5.0
RECONNECT_EVERY_S = 1.0


def tls_context(tls: Tls) -> ssl.SSLContext:
    """TLS client context with ALPN h2 (plaintext channels speak h2c with prior knowledge)."""
    ctx = ssl.create_default_context(cafile=str(tls.ca) if tls.ca else None)
    if tls.cert:
        ctx.load_cert_chain(str(tls.cert), str(tls.key))
    ctx.set_alpn_protocols(["h2"])
    return ctx


class Channel:
    """Calls to `target` (host:port), plaintext or TLS."""

    def __init__(self, target: str, tls: Tls | None = None) -> None:
        host, _, port = target.rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)
        self.server_name = (tls.server_name if tls else None) or self.host
        self.ssl = tls_context(tls) if tls else None
        self.scheme = "https" if tls else "http"
        self.authority = tls.server_name if tls and tls.server_name else target
        self.conn: Connection | None = None  # where new calls go
        self.conns: list[Connection] = []  # every open one (old ones drain after a GOAWAY)
        self.last_fail = (-RECONNECT_EVERY_S, "")  # (monotonic time, why) of the last failure
        self.closed = False

    def connect(self) -> Connection | None:
        """The usable connection, opened if need be; None (see `last_fail`) when that fails."""
        conn = self.conn
        if conn is not None and conn.usable:
            return conn
        failed_at, _ = self.last_fail
        if self.closed or time.monotonic() - failed_at < RECONNECT_EVERY_S:
            return None
        try:
            sock = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT_S)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.ssl is not None:
                sock = self.ssl.wrap_socket(sock, server_hostname=self.server_name)
                if sock.selected_alpn_protocol() != "h2":
                    sock.close()
                    raise OSError("the server did not agree to HTTP/2 (ALPN h2)")
            sock.settimeout(None)
        except OSError as e:  # ssl.SSLError is an OSError
            self.last_fail = (
                time.monotonic(),
                f"failed to connect to {self.host}:{self.port}: {e}",
            )
            return None
        conn = self.conn = Connection()
        conn.sock = sock
        self.conns.append(conn)
        gevent.spawn(self._reader, conn)
        self._flush(conn)
        return conn

    def start(self, call: Call, header_block: bytes, body: bytes, timeout: float) -> None:
        """Send `call`; its `done` runs once when it ends (at once if it cannot be sent)."""
        call.timer = get_hub().loop.timer(max(timeout, 0.0))
        call.timer.start(self._expire, call)
        self._send(call, header_block, body)

    def _send(self, call: Call, header_block: bytes, body: bytes) -> None:
        conn = self.connect()
        if conn is None:
            end_call(call, "UNAVAILABLE", self.last_fail[1] or "channel closed")
            return
        conn.start(call, header_block, body)
        self._flush(conn)

    def cancel(self, call: Call, status: str = "CANCELLED", details: str = "") -> None:
        """End a call from this side (RST_STREAM); its `done` runs now."""
        conn = call.conn
        if conn is None or conn.closed:
            end_call(call, status, details)
            return
        conn.cancel(call, status, details)
        self._flush(conn)

    def _expire(self, call: Call) -> None:
        # A libev callback must not block: the cancel (which writes) runs in a greenlet.
        if not call.ended:
            gevent.spawn(self.cancel, call, "DEADLINE_EXCEEDED", "Deadline Exceeded")

    def close(self) -> None:
        """End every call CANCELLED and close every connection (the run is over)."""
        self.closed = True
        for conn in list(self.conns):
            conn.fail_all("Locally cancelled: the channel was closed", "CANCELLED")
            conn.sock.close()

    # -- the connection's greenlet -----------------------------------------------------------

    def _reader(self, conn: Connection) -> None:
        sock, reason = conn.sock, "connection closed by the server"
        try:
            recv, feed, clock, turn = sock.recv, conn.feed, time.perf_counter, gevent.sleep
            held = clock()
            while True:
                data = recv(READ_SIZE)
                if not data:
                    break
                now = time.time()
                for i in range(0, len(data), SLICE):
                    feed(data[i : i + SLICE] if len(data) > SLICE else data, now)
                    if clock() - held > YIELD_EVERY_S:
                        turn(0)
                        held = clock()
                if len(data) < READ_SIZE:
                    held = clock()  # the socket was drained: the next recv waits in the hub
                if conn.out:
                    self._flush(conn)
                if conn.refused:
                    self._resend(conn)
                if conn.goaway is not None and not conn.calls:
                    reason = conn.goaway_error or "connection drained after GOAWAY"
                    break
        except ProtocolError as e:
            reason = f"HTTP/2 protocol error from the server: {e}"
        except OSError as e:
            reason = f"connection to {self.host}:{self.port} lost: {e}"
        finally:
            if self.conn is conn:
                self.conn = None
            conn.fail_all(reason)
            self._resend(conn)
            sock.close()
            self.conns.remove(conn)

    def _resend(self, old: Connection) -> None:
        """Calls the server never processed (GOAWAY): send them on the next connection."""
        calls, old.refused = old.refused, []
        if self.conn is old:
            self.conn = None
        for call in calls:
            if not call.ended:
                self._send(call, *call.request)

    def _flush(self, conn: Connection) -> None:
        """Write what the core has queued; one writer at a time per connection."""
        if conn.writing:
            return  # the writer already running picks up what was added
        conn.writing = True
        send = conn.sock.send  # not sendall: gevent's asks the kernel for SO_SNDBUF every time
        try:
            while conn.out:
                data = memoryview(bytes(conn.out))
                conn.out.clear()
                while data:
                    data = data[send(data) :]
        except OSError:
            pass  # the reader sees the broken connection and ends its calls
        finally:
            conn.writing = False


def header_block(base: bytes, request_id_header: str, request_id: str, timeout: str) -> bytes:
    """A call's header block: the constant part, then its own request id and deadline."""
    return base + literal(request_id_header, request_id) + literal("grpc-timeout", timeout)
