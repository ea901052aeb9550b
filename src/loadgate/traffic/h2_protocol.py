"""gRPC calls over one HTTP/2 connection, client side, without I/O (a "sans-IO" protocol core).

Why not grpcio here: grpcio hands every stream message to Python on its own (a batch operation,
a completion-queue event, a wake-up of the waiting thread or greenlet), which costs 50-300 us of
client CPU per message; at one token per message that, not the server, bounds a load test
(docs/traffic.md, BENCHMARKS.md "Generator"). This core reads whatever the socket returned in
one pass: every frame of every stream in a read is handled in a loop, each complete gRPC
message goes to its call's `sink` with the read's arrival time, and a call that ends is handed
to its `done` callback. No thread, greenlet or future per call or per message.

It speaks what loadgate's calls need, per RFC 9113 and gRPC's HTTP/2 mapping: unary-request
calls (unary-unary and unary-stream: the request and END_STREAM leave at once), HPACK headers
(requests as literals, responses decoded by `hpack`), flow control both ways, SETTINGS, PING,
GOAWAY, RST_STREAM, CONTINUATION, padding, trailers and trailers-only responses, HTTP statuses
mapped to gRPC codes as gRPC's spec says. No compression (none is asked for), no server push.
`loadgate.traffic.h2_client` drives it over a gevent socket.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable
from urllib.parse import unquote

from hpack import Decoder
from hpack.exceptions import HPACKError

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE = range(9)
CONTINUATION = 9
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20
S_HEADER_TABLE_SIZE, S_ENABLE_PUSH, S_MAX_CONCURRENT_STREAMS = 1, 2, 3
S_INITIAL_WINDOW_SIZE, S_MAX_FRAME_SIZE = 4, 5
NO_ERROR, PROTOCOL_ERROR, CANCEL, REFUSED_STREAM = 0x0, 0x1, 0x8, 0x7
_U32 = struct.Struct(">I")
_FRAME_HEAD = struct.Struct(">HBBBI")  # length (hi 16, lo 8), type, flags, stream id

# Our receive windows: large, so a fast server is never held back by this client; credit is
# returned once half is consumed.
RECV_WINDOW = 1 << 24
CONN_RECV_WINDOW = 1 << 30
DEFAULT_WINDOW, DEFAULT_MAX_FRAME = 65_535, 16_384
MAX_FRAME_IN = DEFAULT_MAX_FRAME  # we never raise our SETTINGS_MAX_FRAME_SIZE
MAX_STREAM_ID = (1 << 31) - 1

# gRPC status codes by number (grpc.StatusCode names, without importing grpc here).
CODES = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
]
# gRPC's HTTP-to-gRPC status mapping (doc/http-grpc-status-mapping.md).
HTTP_CODES = {400: "INTERNAL", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}
HTTP_CODES |= {404: "UNIMPLEMENTED", 429: "UNAVAILABLE", 502: "UNAVAILABLE"}
HTTP_CODES |= {503: "UNAVAILABLE", 504: "UNAVAILABLE"}
# RST_STREAM error codes as gRPC statuses (gRPC's PROTOCOL-HTTP2.md "Errors").
RST_CODES = {REFUSED_STREAM: "UNAVAILABLE", CANCEL: "CANCELLED", 0xB: "RESOURCE_EXHAUSTED"}
RST_CODES |= {0xC: "PERMISSION_DENIED"}


def _int(value: int, prefix_bits: int, first: int) -> bytes:
    """HPACK integer with an N-bit prefix; `first` holds the bits above the prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def literal(name: str, value: str) -> bytes:
    """A header as an HPACK literal without indexing, new name, no Huffman: never touches the
    server's dynamic table, so a request's header block depends on nothing but its values."""
    n, v = name.encode(), value.encode()
    return b"\x00" + _int(len(n), 7, 0) + n + _int(len(v), 7, 0) + v


def request_headers(scheme: str, authority: str, path: str, metadata: tuple) -> bytes:
    """The constant part of a call's header block (pseudo-headers first, as HTTP/2 requires)."""
    block = b"\x83" + (b"\x87" if scheme == "https" else b"\x86")  # :method POST, :scheme
    p, a = path.encode(), authority.encode()
    block += b"\x04" + _int(len(p), 7, 0) + p  # :path, name from the static table
    block += b"\x01" + _int(len(a), 7, 0) + a  # :authority
    block += literal("content-type", "application/grpc") + literal("te", "trailers")
    block += literal("user-agent", "loadgate")
    for key, value in metadata:
        block += literal(key, value)
    return block


def grpc_timeout(seconds: float) -> str:
    """grpc-timeout header value: at most 8 digits, in ms (or s beyond that)."""
    ms = max(int(seconds * 1000), 1)
    return f"{ms}m" if ms < 100_000_000 else f"{min(int(seconds), 99_999_999)}S"


def grpc_message(data: bytes) -> bytes:
    """One length-prefixed, uncompressed gRPC message."""
    return b"\x00" + _U32.pack(len(data)) + data


class Call:
    """One call on the connection. `sink(payload, now)` gets each response message, `done(call)`
    once when the call ends (status set)."""

    __slots__ = (
        "sid",
        "sink",
        "done",
        "headers",
        "status",
        "details",
        "buf",
        "recv",
        "pending",
        "send_window",
        "ended",
        "ctx",
        "started",
        "request",
        "timer",
        "conn",
    )

    def __init__(self, sink: Callable[[bytes, float], None], done: Callable[[Call], None], ctx):
        self.sid = 0
        self.sink, self.done, self.ctx = sink, done, ctx
        self.headers: dict[str, str] | None = None  # response headers (None before them)
        self.status = ""  # gRPC code name once ended
        self.details = ""
        self.buf = b""  # a message split across DATA frames
        self.recv = 0  # bytes consumed since the last stream WINDOW_UPDATE
        self.pending: bytes | memoryview = b""  # request bytes waiting for send window
        self.send_window = 0
        self.ended = False
        self.started = False  # HEADERS sent (False: queued for a free stream slot)
        self.request: tuple[bytes, bytes] = (b"", b"")  # header block, body: to send again
        self.timer = None  # the driver's deadline timer (stopped when the call ends)
        self.conn: Connection | None = None  # where it was sent


class ProtocolError(Exception):
    """The peer broke HTTP/2: the connection is unusable."""


class Connection:
    """One HTTP/2 connection's state. Methods that produce bytes to send append them to `out`;
    the driver writes and clears it after each call."""

    def __init__(self) -> None:
        self.out = bytearray(PREFACE)
        # No server push; our stream window. (SETTINGS_MAX_CONCURRENT_STREAMS would limit the
        # server's streams, of which there are none.)
        self.out += _frame(
            SETTINGS,
            0,
            0,
            struct.pack(">HIHI", S_ENABLE_PUSH, 0, S_INITIAL_WINDOW_SIZE, RECV_WINDOW),
        )
        self.out += _frame(WINDOW_UPDATE, 0, 0, _U32.pack(CONN_RECV_WINDOW - DEFAULT_WINDOW))
        self.calls: dict[int, Call] = {}
        self.queued: deque[tuple[Call, bytes, bytes]] = deque()  # waiting for a stream slot
        self.next_sid = 1
        self.decoder = Decoder()
        self.peer_window = DEFAULT_WINDOW  # connection-level send window
        self.peer_initial = DEFAULT_WINDOW
        self.peer_max_frame = DEFAULT_MAX_FRAME
        self.peer_max_streams = 1 << 31
        self.conn_recv = 0
        self.inbuf = b""
        self.hblock: tuple[int, int, bytearray] | None = None  # (sid, flags, fragments) open
        self.goaway: int | None = None  # last stream id the server will process
        self.goaway_error = ""
        self.refused: list[Call] = []  # never processed (GOAWAY): to send again elsewhere
        self.closed = ""  # why the connection is unusable ("" while it is fine)
        self.now = 0.0
        self.sock = None  # the driver's socket
        self.writing = False  # the driver is writing `out`

    # -- sending -----------------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        return not self.closed and self.goaway is None and self.next_sid < MAX_STREAM_ID

    def start(self, call: Call, header_block: bytes, body: bytes) -> None:
        """Send a call (header block complete, body = the gRPC-framed request) or queue it
        until the server's concurrent-stream limit allows."""
        call.request, call.conn = (header_block, body), self
        if len(self.calls) >= self.peer_max_streams:
            self.queued.append((call, header_block, body))
            return
        self._open(call, header_block, body)

    def _open(self, call: Call, header_block: bytes, body: bytes) -> None:
        sid = self.next_sid
        self.next_sid += 2
        call.sid, call.started, call.send_window = sid, True, self.peer_initial
        self.calls[sid] = call
        mf, out = self.peer_max_frame, self.out
        if len(header_block) <= mf:
            out += _frame(HEADERS, END_HEADERS, sid, header_block)
        else:
            out += _frame(HEADERS, 0, sid, header_block[:mf])
            rest = header_block[mf:]
            while rest:
                chunk, rest = rest[:mf], rest[mf:]
                out += _frame(CONTINUATION, 0 if rest else END_HEADERS, sid, chunk)
        call.pending = memoryview(body)  # sliced per frame without copying the rest
        self._send_body(call)

    def _send_body(self, call: Call) -> None:
        data = call.pending
        while data:
            n = min(len(data), call.send_window, self.peer_window, self.peer_max_frame)
            if n <= 0:
                break
            chunk, data = data[:n], data[n:]
            call.send_window -= n
            self.peer_window -= n
            self.out += _frame_head(DATA, 0 if data else END_STREAM, call.sid, n)
            self.out += chunk
        call.pending = data

    def _flush_pending(self) -> None:
        for call in list(self.calls.values()):
            if call.pending and self.peer_window > 0:
                self._send_body(call)

    def cancel(self, call: Call, status: str = "CANCELLED", details: str = "") -> None:
        """End a call from this side (cancel, deadline): RST_STREAM and `done` with `status`."""
        if call.ended:
            return
        if call.started:
            if self.calls.pop(call.sid, None) is not None and not self.closed:
                self.out += _frame(RST_STREAM, 0, call.sid, _U32.pack(CANCEL))
        else:
            self.queued = deque(q for q in self.queued if q[0] is not call)
            if call in self.refused:
                self.refused.remove(call)
        self._end(call, status, details)

    def fail_all(self, reason: str, status: str = "UNAVAILABLE") -> None:
        """The connection is gone: every call ends with `status`."""
        self.closed = self.closed or reason
        calls = list(self.calls.values()) + [q[0] for q in self.queued]
        self.calls.clear()
        self.queued.clear()
        for call in calls:
            self._end(call, status, reason)

    # -- receiving ---------------------------------------------------------------------------

    def feed(self, data: bytes, now: float) -> None:
        """Handle bytes read from the socket at `now` (epoch s): every complete frame in them."""
        self.now = now
        buf = self.inbuf + data if self.inbuf else data
        pos, size = 0, len(buf)
        head = _FRAME_HEAD.unpack_from
        while size - pos >= 9:
            hi, lo, ftype, flags, sid = head(buf, pos)
            length = (hi << 8) | lo
            end = pos + 9 + length
            if end > size:
                break
            if length > MAX_FRAME_IN:
                raise ProtocolError(f"a {length}-byte frame, above our SETTINGS_MAX_FRAME_SIZE")
            sid &= MAX_STREAM_ID
            if ftype == DATA:
                self._data(sid, flags, buf, pos + 9, end, length)
            elif self.hblock is not None and ftype != CONTINUATION:
                raise ProtocolError("frame inside a header block")
            elif ftype in (HEADERS, CONTINUATION):
                self._headers(ftype, sid, flags, buf[pos + 9 : end])
            else:
                self._control(ftype, sid, flags, buf[pos + 9 : end])
            pos = end
        self.inbuf = buf[pos:] if pos < size else b""
        if self.conn_recv >= CONN_RECV_WINDOW // 2:
            self.out += _frame(WINDOW_UPDATE, 0, 0, _U32.pack(self.conn_recv))
            self.conn_recv = 0

    def _data(self, sid: int, flags: int, buf, start: int, end: int, length: int) -> None:
        self.conn_recv += length
        call = self.calls.get(sid)
        if call is None:
            return  # a stream we already ended (cancelled, deadline): its credit still counts
        if flags & PADDED:
            start, end = start + 1, end - buf[start]
        call.recv += length
        if call.recv >= RECV_WINDOW // 2 and not flags & END_STREAM:
            self.out += _frame(WINDOW_UPDATE, 0, sid, _U32.pack(call.recv))
            call.recv = 0
        if end > start:
            chunk = buf[start:end]
            if call.buf:
                chunk = call.buf + chunk
                call.buf = b""
            self._messages(call, chunk)
        if flags & END_STREAM and not call.ended:
            self.calls.pop(sid, None)
            if call.buf:
                self._end(call, "INTERNAL", "stream ended inside a message")
            else:
                self._end(call, "INTERNAL", "server closed the stream without sending trailers")
            self._next_queued()

    def _messages(self, call: Call, chunk: bytes) -> None:
        pos, size, now, sink = 0, len(chunk), self.now, call.sink
        while size - pos >= 5:
            n = _U32.unpack_from(chunk, pos + 1)[0]
            if pos + 5 + n > size:
                break
            if chunk[pos]:
                self.cancel(call, "INTERNAL", "compressed message, none was asked for")
                return
            sink(chunk[pos + 5 : pos + 5 + n], now)
            pos += 5 + n
        if pos < size:
            call.buf = chunk[pos:]

    def _headers(self, ftype: int, sid: int, flags: int, payload: bytes) -> None:
        if ftype == HEADERS:
            start, end = 0, len(payload)
            if flags & PADDED:
                start, end = 1, end - payload[0]
            if flags & PRIORITY_FLAG:
                start += 5
            self.hblock = (sid, flags, bytearray(payload[start:end]))
        elif self.hblock is None or self.hblock[0] != sid:
            raise ProtocolError("CONTINUATION without its HEADERS")
        else:
            self.hblock[2].extend(payload)
        if not flags & END_HEADERS:
            return
        sid, first_flags, block = self.hblock
        self.hblock = None
        try:  # decoded even for a call we ended: the dynamic table must stay in step
            fields = self.decoder.decode(bytes(block))
        except HPACKError as e:
            raise ProtocolError(f"bad header block: {e}") from None
        call = self.calls.get(sid)
        if call is None:
            return
        headers = dict(fields)
        if call.headers is None and not first_flags & END_STREAM:
            call.headers = headers  # the response headers; trailers come later
            status = headers.get(":status", "200")
            if status != "200":
                code = HTTP_CODES.get(int(status), "UNKNOWN")
                self.cancel(call, code, f"Received http2 header with status: {status}")
            return
        if not first_flags & END_STREAM:
            raise ProtocolError("a second header block without END_STREAM")
        self.calls.pop(sid, None)
        trailers_only = call.headers is None
        if trailers_only:
            call.headers = {}  # as grpc: initial metadata is empty, the block is the trailers
        code = headers.get("grpc-status")
        if code is None:
            http = headers.get(":status", "200") if trailers_only else "200"
            status = HTTP_CODES.get(int(http), "UNKNOWN") if http != "200" else "UNKNOWN"
            details = (
                f"Received http2 header with status: {http}"
                if http != "200"
                else "no grpc-status in trailers"
            )
        else:
            i = int(code) if code.isdigit() else 2
            status = CODES[i] if i < len(CODES) else "UNKNOWN"
            details = unquote(headers.get("grpc-message", ""))
        if call.buf and status == "OK":
            status, details = "INTERNAL", "stream ended inside a message"
        self._end(call, status, details)
        self._next_queued()

    def _control(self, ftype: int, sid: int, flags: int, payload: bytes) -> None:
        if ftype == SETTINGS:
            if flags & ACK:
                return
            for i in range(0, len(payload) // 6 * 6, 6):
                key, value = struct.unpack_from(">HI", payload, i)
                if key == S_INITIAL_WINDOW_SIZE:
                    delta, self.peer_initial = value - self.peer_initial, value
                    for call in self.calls.values():
                        call.send_window += delta
                elif key == S_MAX_FRAME_SIZE:
                    self.peer_max_frame = value
                elif key == S_MAX_CONCURRENT_STREAMS:
                    self.peer_max_streams = value
                elif key == S_HEADER_TABLE_SIZE:
                    pass  # the size of the server's decoder table: our literals never index
            self.out += _frame(SETTINGS, ACK, 0, b"")
            self._flush_pending()
            self._next_queued()
        elif ftype == PING:
            if not flags & ACK:
                self.out += _frame(PING, ACK, 0, payload)
        elif ftype == WINDOW_UPDATE:
            inc = _U32.unpack(payload)[0] & MAX_STREAM_ID
            if sid == 0:
                self.peer_window += inc
                self._flush_pending()
            elif (call := self.calls.get(sid)) is not None:
                call.send_window += inc
                if call.pending:
                    self._send_body(call)
        elif ftype == RST_STREAM:
            call = self.calls.pop(sid, None)
            if call is not None:
                code = _U32.unpack(payload)[0]
                status = RST_CODES.get(code, "INTERNAL")
                self._end(call, status, f"Received RST_STREAM with error code {code}")  # grpcio's
                self._next_queued()
        elif ftype == GOAWAY:
            last, code = struct.unpack_from(">II", payload)
            last &= MAX_STREAM_ID
            self.goaway = last if self.goaway is None else min(self.goaway, last)
            # Streams above `last` were never processed (RFC 9113 6.8), like the queued ones:
            # the driver sends them again on a new connection.
            for s in [s for s in self.calls if s > last]:
                call = self.calls.pop(s)
                call.started = False
                self.refused.append(call)
            self.refused += [q[0] for q in self.queued]
            self.queued.clear()
            if code != NO_ERROR:
                self.goaway_error = f"GOAWAY from the server (HTTP/2 error {code:#x})"
        elif ftype == PUSH_PROMISE:
            raise ProtocolError("PUSH_PROMISE, which we disabled")
        # PRIORITY and unknown frame types are ignored (RFC 9113 5.5)

    def _next_queued(self) -> None:
        while self.queued and len(self.calls) < self.peer_max_streams and self.usable:
            self._open(*self.queued.popleft())

    def _end(self, call: Call, status: str, details: str) -> None:
        end_call(call, status, details)


def end_call(call: Call, status: str, details: str) -> None:
    """Mark a call ended and run its `done` (once)."""
    if call.ended:
        return
    call.ended, call.status, call.details = True, status, details
    call.pending = b""
    if call.timer is not None:
        call.timer.stop()
    call.done(call)


def _frame_head(ftype: int, flags: int, sid: int, n: int) -> bytes:
    return _FRAME_HEAD.pack(n >> 8, n & 0xFF, ftype, flags, sid)


def _frame(ftype: int, flags: int, sid: int, payload: bytes) -> bytes:
    return _frame_head(ftype, flags, sid, len(payload)) + payload
