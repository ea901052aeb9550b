"""The emulated API's HTTP layer (twin/kube_http.py) on loopback with a small handler: Status
answers, bounded connections, chunked streams on reusable connections, and a stop that never
waits on a client."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import pytest

from loadgate.twin.kube_discovery import status
from loadgate.twin.kube_http import MAX_CONNECTIONS, ApiError, ApiServer, Reply, Request


def handle(req: Request) -> Reply:
    if req.path == "/stream":
        return Reply(stream=iter([b'{"type":"ADDED"}\n', b'{"type":"DELETED"}\n']))
    if req.path == "/bug":
        raise RuntimeError("boom")
    if req.path == "/missing":
        raise ApiError(status(404, "the server could not find the requested resource"))
    return Reply(body={"path": req.path, "query": req.query, "body": req.body.decode()})


@pytest.fixture
def server():
    srv = ApiServer(("127.0.0.1", 0), handle)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.close_connections()
    srv.server_close()
    t.join(timeout=5)


def conn(srv: ApiServer) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=5)


def test_answers_and_errors_are_json_and_a_bug_is_a_status_not_a_traceback(server):
    c = conn(server)
    c.request("DELETE", "/x?gracePeriodSeconds=0", body=b'{"a":1}')
    r = c.getresponse()
    assert r.status == 200 and json.loads(r.read()) == {
        "path": "/x", "query": {"gracePeriodSeconds": "0"}, "body": '{"a":1}',
    }  # fmt: skip
    c.request("GET", "/missing")
    r = c.getresponse()
    st = json.loads(r.read())
    assert (r.status, st["kind"], st["reason"], st["code"]) == (404, "Status", "NotFound", 404)
    c.request("GET", "/bug")  # the same connection still works after an error
    r = c.getresponse()
    st = json.loads(r.read())
    assert (r.status, st["reason"], st["message"]) == (500, "InternalError", "RuntimeError: boom")
    assert list(server.requests) == ["DELETE /x?gracePeriodSeconds=0", "GET /missing", "GET /bug"]


def test_a_completed_stream_is_chunked_and_keeps_its_connection(server):
    c = conn(server)
    c.request("GET", "/stream")
    r = c.getresponse()
    assert r.getheader("Transfer-Encoding") == "chunked"
    assert r.read().splitlines() == [b'{"type":"ADDED"}', b'{"type":"DELETED"}']
    c.request("GET", "/after")  # reused, as urllib3's pool reuses it after a watch
    assert json.loads(c.getresponse().read())["path"] == "/after"


def test_connections_beyond_the_bound_get_429_and_stop_does_not_wait_on_idle_ones(server):
    idle = [
        socket.create_connection(server.server_address, timeout=5) for _ in range(MAX_CONNECTIONS)
    ]
    try:
        time.sleep(0.2)  # let the server accept them all
        c = conn(server)
        c.request("GET", "/x")
        r = c.getresponse()
        assert r.status == 429 and json.loads(r.read())["reason"] == "TooManyRequests"
        t0 = time.monotonic()
        server.shutdown()
        server.close_connections()
        server.server_close()  # joins every connection's thread
        assert time.monotonic() - t0 < 2, "idle keep-alive connections are shut, not waited on"
    finally:
        for s in idle:
            s.close()
