"""The HTTP side on the same event loop: `/metrics`, `/v2/health/live`, `/v2/health/ready`.

A deliberately tiny HTTP/1.x handler (GET only, one request per connection): its clients are
Prometheus scrapes and proxy health checks, which need nothing more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

Route = Callable[[], tuple[int, str, str]]  # -> (status, content type, body)

_REASON = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
_TEXT = "text/plain; charset=utf-8"
_PROM = "text/plain; version=0.0.4; charset=utf-8"


def routes(render_metrics: Callable[[], str], ready: Callable[[], bool]) -> dict[str, Route]:
    return {
        "/metrics": lambda: (200, _PROM, render_metrics()),
        "/v2/health/live": lambda: (200, _TEXT, ""),
        "/v2/health/ready": lambda: (200, _TEXT, "") if ready() else (503, _TEXT, "not ready\n"),
    }


def respond(table: dict[str, Route], request_line: bytes) -> bytes:
    """The full HTTP response to one request line (pure; unit-testable)."""
    parts = request_line.decode("latin-1").split()
    if len(parts) < 2:
        status, ctype, body = 405, _TEXT, "bad request\n"
    elif parts[0] not in ("GET", "HEAD"):
        status, ctype, body = 405, _TEXT, "only GET\n"
    else:
        route = table.get(parts[1].split("?", 1)[0])
        status, ctype, body = route() if route else (404, _TEXT, "not found\n")
    data = body.encode()
    head = (
        f"HTTP/1.1 {status} {_REASON[status]}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    ).encode()
    return head + (b"" if parts and parts[0] == "HEAD" else data)


async def serve_http(table: dict[str, Route], host: str, port: int) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass  # headers are not needed
            writer.write(respond(table, line))
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)
