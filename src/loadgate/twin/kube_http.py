"""HTTP for the twin's emulated Kubernetes API: one thread per connection, at most
`MAX_CONNECTIONS` (more get a 429 Status at once), keep-alive closed after `IDLE_S` idle, chunked
streams for watches and logs, and `close_connections()` so stopping never waits on a client.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kubernetes import client

from loadgate.twin.kube_discovery import status

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 32
IDLE_S = 60  # an idle keep-alive connection is closed after this


class ApiError(Exception):
    def __init__(self, st: client.V1Status) -> None:
        super().__init__(st.message)
        self.status = st


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: bytes
    content_type: str


@dataclass
class Reply:
    code: int = 200
    body: Any = None  # JSON-able, or bytes for text
    stream: Iterator[bytes] | None = None  # chunked (watches, logs)
    content_type: str = "application/json"


Handle = Callable[[Request], Reply]


def _json(obj: Any) -> bytes:
    return json.dumps(client.ApiClient().sanitize_for_serialization(obj)).encode()


class ApiServer(ThreadingHTTPServer):
    """Serves `handle` on `address`; `requests` records "METHOD path?query" of each request."""

    daemon_threads = False
    block_on_close = True  # server_close() joins every connection's thread
    request_queue_size = 64  # socketserver's 5 drops a burst's SYNs (clients retry after 1 s)

    def __init__(self, address: tuple[str, int], handle: Handle) -> None:
        self.handle = handle
        self.requests: deque[str] = deque(maxlen=2000)
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            body = _json(status(429, "too many requests"))
            head = (
                "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
            )
            with contextlib.suppress(OSError):
                request.sendall(head.encode() + body)
            self.shutdown_request(request)
            return
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._open_lock:
                self._open.discard(request)
            self._slots.release()

    def close_connections(self) -> None:
        """Shut every open connection down: its thread's read or write ends at once."""
        with self._open_lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_S
    # Headers and body leave in separate writes: with Nagle on, each small answer on a
    # keep-alive connection waits for the client's delayed ACK (~40 ms measured).
    disable_nagle_algorithm = True
    server: ApiServer

    def _serve(self) -> None:
        u = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        self.server.requests.append(f"{self.command} {self.path}")
        req = Request(self.command, u.path, query, body, self.headers.get("Content-Type", ""))
        try:
            reply = self.server.handle(req)
        except ApiError as e:
            reply = Reply(int(e.status.code or 500), e.status)
        except Exception as e:  # a bug answers as an API server's internal error, no traceback
            log.exception("kube API: %s %s failed", self.command, self.path)
            reply = Reply(500, status(500, f"{type(e).__name__}: {e}"))
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        if reply.stream is None:
            body = reply.body
            data = body if isinstance(body, bytes) else _json(body)
            self.send_response(reply.code)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        try:
            self.send_response(reply.code)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Cache-Control", "no-cache, private")
            self.end_headers()
            for chunk in reply.stream:
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")  # complete: the connection stays open for reuse
        except OSError:  # the client went away, or the twin is stopping
            self.close_connection = True
        except Exception:  # headers are out: a broken stream can only end its connection
            log.exception("kube API: streaming %s failed", self.path)
            self.close_connection = True
        finally:
            close = getattr(reply.stream, "close", None)
            if close is not None:
                close()

    do_GET = do_DELETE = do_PATCH = do_PUT = do_POST = _serve

    def log_message(self, *args: Any) -> None:
        pass
