"""loadgate's HTTP/2 gRPC client core against an independent implementation: the `h2` library
as the server. Every byte the client writes is parsed (and validated) by h2, every byte h2
writes is fed to the client, so framing, HPACK, flow control, SETTINGS, PING, GOAWAY and
RST_STREAM are checked against someone else's reading of RFC 9113."""

from __future__ import annotations

import struct

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from loadgate.traffic import h2_protocol as hp

PATH = "/inference.GRPCInferenceService/ModelStreamInfer"


class Pair:
    """Our client Connection wired to an h2 server connection in memory."""

    def __init__(self, server_settings: dict | None = None) -> None:
        cfg = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        self.server = h2.connection.H2Connection(cfg)
        self.server.initiate_connection()
        if server_settings:
            self.server.update_settings(server_settings)
        self.client = hp.Connection()
        self.events: list = []
        self.ended: list[hp.Call] = []
        self.messages: dict[int, list[tuple[bytes, float]]] = {}
        self.pump()

    def pump(self, now: float = 100.0) -> list:
        """Exchange bytes until both sides are quiet; the server's events of this exchange."""
        new = []
        for _ in range(50):
            moved = False
            if self.client.out:
                data = bytes(self.client.out)
                self.client.out.clear()
                new += self.server.receive_data(data)
                moved = True
            out = self.server.data_to_send()
            if out:
                self.client.feed(out, now)
                moved = True
            if not moved:
                break
        self.events += new
        return new

    def call(self, body: bytes = b"request", metadata=(("x-request-id", "r-1"),)) -> hp.Call:
        call = hp.Call(None, self.ended.append, None)
        call.sink = lambda payload, now, c=call: self.messages.setdefault(c.sid, []).append(
            (payload, now)
        )
        block = hp.request_headers("http", "127.0.0.1:8001", PATH, metadata)
        block += hp.literal("grpc-timeout", hp.grpc_timeout(2.5))
        self.client.start(call, block, hp.grpc_message(body))
        return call

    def respond(self, sid: int, headers=(("x-pod-name", "pod-0"),)) -> None:
        self.server.send_headers(
            sid, [(":status", "200"), ("content-type", "application/grpc"), *headers]
        )

    def trailers(self, sid: int, status: int = 0, message: str = "") -> None:
        t = [("grpc-status", str(status))] + ([("grpc-message", message)] if message else [])
        self.server.send_headers(sid, t, end_stream=True)


def received(events, kind):
    return [e for e in events if isinstance(e, kind)]


def test_a_stream_call_delivers_each_message_with_its_read_time_and_the_trailers():
    p = Pair()
    call = p.call(b"the request")
    ev = p.pump()
    (req,) = received(ev, h2.events.RequestReceived)
    headers = dict(req.headers)
    assert headers[":method"] == "POST" and headers[":path"] == PATH
    assert headers["content-type"] == "application/grpc" and headers["te"] == "trailers"
    assert headers["x-request-id"] == "r-1" and headers["grpc-timeout"] == "2500m"
    (data,) = received(ev, h2.events.DataReceived)
    assert data.data == b"\x00\x00\x00\x00\x0bthe request"
    assert received(ev, h2.events.StreamEnded)  # request and half-close left together
    p.respond(call.sid)
    p.server.send_data(call.sid, hp.grpc_message(b"m1") + hp.grpc_message(b"m2"))
    p.pump(now=101.0)
    msg3 = hp.grpc_message(b"m3" * 10)
    p.server.send_data(call.sid, msg3[:7])  # a message split across DATA frames
    p.pump(now=102.0)
    p.server.send_data(call.sid, msg3[7:], pad_length=9)
    p.pump(now=103.0)
    assert not p.ended
    p.trailers(call.sid)
    p.pump(now=104.0)
    assert p.messages[call.sid] == [(b"m1", 101.0), (b"m2", 101.0), (b"m3" * 10, 103.0)]
    assert p.ended == [call] and call.status == "OK" and call.headers["x-pod-name"] == "pod-0"
    assert not p.client.calls


def test_trailers_only_error_and_percent_encoded_message():
    p = Pair()
    call = p.call()
    p.pump()
    p.server.send_headers(
        call.sid,
        [(":status", "200"), ("content-type", "application/grpc"), ("grpc-status", "14"),
         ("grpc-message", "upstream connect error%2C reset reason: overflow")],
        end_stream=True,
    )  # fmt: skip
    p.pump()
    assert call.status == "UNAVAILABLE"
    assert call.details == "upstream connect error, reset reason: overflow"
    assert call.headers == {}  # as grpcio: a trailers-only response has no initial metadata


@pytest.mark.parametrize(
    ("http", "code"), [("503", "UNAVAILABLE"), ("404", "UNIMPLEMENTED"), ("500", "UNKNOWN")]
)
def test_http_status_without_grpc_status_maps_as_grpc_says(http, code):
    p = Pair()
    call = p.call()
    p.pump()
    p.server.send_headers(call.sid, [(":status", http)], end_stream=True)
    p.pump()
    assert call.status == code and http in call.details


@pytest.mark.parametrize(
    ("error", "code"), [(0x7, "UNAVAILABLE"), (0x8, "CANCELLED"), (0x2, "INTERNAL")]
)
def test_rst_stream_from_the_server(error, code):
    p = Pair()
    call = p.call()
    p.pump()
    p.server.reset_stream(call.sid, error)
    p.pump()
    assert p.ended == [call] and call.status == code
    assert call.details == f"Received RST_STREAM with error code {error}"  # grpcio's words


def test_cancel_resets_the_stream_and_late_frames_are_ignored():
    p = Pair()
    first = p.call()
    p.pump()
    p.respond(first.sid)
    p.pump()
    p.client.cancel(first, "DEADLINE_EXCEEDED", "Deadline Exceeded")
    ev = p.pump()
    (reset,) = received(ev, h2.events.StreamReset)
    assert reset.stream_id == first.sid and reset.error_code == hp.CANCEL
    assert p.ended == [first] and first.status == "DEADLINE_EXCEEDED"
    p.client.cancel(first)  # twice: no second done
    second = p.call()
    p.pump()
    p.respond(second.sid)
    p.server.send_data(second.sid, hp.grpc_message(b"ok"))
    p.trailers(second.sid)
    p.pump()
    assert p.ended == [first, second] and second.status == "OK"
    assert p.messages[second.sid] == [(b"ok", 100.0)] and first.sid not in p.messages


def test_a_large_request_waits_for_the_servers_flow_control_window():
    p = Pair()
    body = bytes(range(256)) * 800  # 204,800 bytes: three times h2's default window
    call = p.call(body)
    ev = p.pump()
    got = b"".join(e.data for e in received(ev, h2.events.DataReceived))
    assert len(got) == hp.DEFAULT_WINDOW  # the window, no more
    assert not received(ev, h2.events.StreamEnded)
    for _ in range(10):
        for e in received(ev, h2.events.DataReceived):
            p.server.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
        ev = p.pump()
        got += b"".join(e.data for e in received(ev, h2.events.DataReceived))
        if received(ev, h2.events.StreamEnded):
            break
    assert got == hp.grpc_message(body) and not call.ended


def test_the_servers_concurrent_stream_limit_queues_calls():
    p = Pair({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1})
    first, second = p.call(), p.call()
    ev = p.pump()
    assert len(received(ev, h2.events.RequestReceived)) == 1 and not second.started
    p.respond(first.sid)
    p.trailers(first.sid)
    ev = p.pump()
    assert first.status == "OK" and second.started
    assert [e.stream_id for e in received(ev, h2.events.RequestReceived)] == [second.sid]


def test_goaway_refuses_later_streams_and_keeps_earlier_ones():
    p = Pair()
    kept, refused = p.call(), p.call()
    p.pump()
    # h2 would close the whole connection: the GOAWAY frame is fed to the client by hand
    p.client.feed(hp._frame(hp.GOAWAY, 0, 0, struct.pack(">II", kept.sid, 0)), 100.0)
    assert p.client.refused == [refused] and not refused.ended and not refused.started
    assert not p.client.usable  # new calls go to a new connection
    p.respond(kept.sid)
    p.trailers(kept.sid)
    p.pump()
    assert kept.status == "OK"


def test_ping_is_acknowledged_and_settings_too():
    p = Pair()
    p.server.ping(b"12345678")
    ev = p.pump()
    (ack,) = received(ev, h2.events.PingAckReceived)
    assert ack.ping_data == b"12345678"
    assert received(p.events, h2.events.SettingsAcknowledged)


def test_a_header_block_split_into_continuation_frames():
    p = Pair()
    call = p.call()
    p.pump()
    big = [(f"x-big-{i}", "v" * 200) for i in range(120)]  # ~26 KB: beyond one 16 KB frame
    p.respond(call.sid, headers=big)
    p.trailers(call.sid)
    p.pump()
    assert call.status == "OK" and call.headers["x-big-119"] == "v" * 200


def test_compressed_message_and_missing_trailers_are_errors():
    p = Pair()
    a, b = p.call(), p.call()
    p.pump()
    for c in (a, b):
        p.respond(c.sid)
    p.server.send_data(a.sid, b"\x01\x00\x00\x00\x01x")
    p.server.send_data(b.sid, hp.grpc_message(b"x"), end_stream=True)
    p.pump()
    assert a.status == "INTERNAL" and "compressed" in a.details
    assert b.status == "INTERNAL" and "trailers" in b.details


def test_an_oversized_frame_is_a_protocol_error():
    p = Pair()
    with pytest.raises(hp.ProtocolError, match="16385-byte frame"):
        p.client.feed(hp._frame(hp.DATA, 0, 1, bytes(16_385)), 100.0)


def test_fail_all_ends_every_call_once():
    p = Pair()
    calls = [p.call() for _ in range(3)]
    p.pump()
    p.client.fail_all("connection lost")
    assert p.ended == calls and {c.status for c in calls} == {"UNAVAILABLE"}
    assert calls[0].details == "connection lost" and not p.client.usable


def test_integers_and_timeouts_encode_as_hpack_and_grpc_say():
    assert hp._int(10, 5, 0) == b"\x0a"
    assert hp._int(1337, 5, 0) == b"\x1f\x9a\x0a"  # RFC 7541 C.1.2
    assert hp.grpc_timeout(0.0001) == "1m" and hp.grpc_timeout(200_000) == "200000S"
