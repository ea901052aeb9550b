"""The twin's control API: HTTP + JSON on 127.0.0.1, what `TwinPlatform` (possibly in another
process, e.g. the chaos extension) and `loadgate twin status` use.

    GET  /pods                 [{name, address, ready, queue, started, phase, envoy_health,
                                 envoy_rq_active}]
    POST /kill                 {names | count | percent, grace_period} -> {killed: [...]}
    POST /scale                {replicas} -> {replicas}
    GET  /replicas             {spec, ready}
    GET  /timeline?since=T     [{time, source, metric, labels, value}]
    GET  /events?since=T       [{time, kind, name, reason, message, fields}]
    GET  /scaledobject         {spec, status: {last_decision, ...}} (spec null when off)
    GET  /endpoints            {grpc_target, prometheus_url, control_url, envoy_admin_url, ...}
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse

from loadgate.errors import UserError
from loadgate.procs import free_port
from loadgate.twin.eventlog import event_to_dict

if TYPE_CHECKING:
    from loadgate.twin.stack import Twin
    from loadgate.twin.supervisor import PodProc

_QUEUE_RE = re.compile(r"^nv_inference_pending_request_count(?:\{[^}]*\})?\s+([0-9.eE+-]+)", re.M)


class BadRequest(Exception):
    pass


def pod_queue(http_port: int, timeout: float = 0.5) -> int | None:
    """Queue depth a pod reports (sum of nv_inference_pending_request_count), None if silent."""
    try:
        url = f"http://127.0.0.1:{http_port}/metrics"
        with urllib.request.urlopen(url, timeout=timeout) as r:
            text = r.read().decode(errors="replace")
    except OSError:
        return None
    return int(sum(float(v) for v in _QUEUE_RE.findall(text)))


def pick_victims(
    names: list[str],
    *,
    pick: list[str] | None,
    count: int | None,
    percent: float | None,
    rng: random.Random,
) -> list[str]:
    """Which pods a kill request means: named ones, `count` at random, or `percent` of them."""
    if pick:
        unknown = sorted(set(pick) - set(names))
        if unknown:
            raise BadRequest(f"no such pod(s): {', '.join(unknown)}")
        return list(pick)
    if count is None and percent is not None:
        if not 0 < percent <= 100:
            raise BadRequest("percent must be in (0, 100]")
        count = max(1, math.floor(len(names) * percent / 100))
    if count is None:
        raise BadRequest("kill needs names, count or percent")
    if count < 0:
        raise BadRequest("count must be >= 0")
    return rng.sample(sorted(names), min(count, len(names)))


def pod_json(pod: PodProc, queue: int | None) -> dict[str, Any]:
    return {
        "name": pod.name,
        "address": pod.address,
        "ready": pod.ready,
        "queue": queue,
        "started": pod.started,
        "phase": pod.phase,
        "http_port": pod.http_port,
        "pid": pod.proc.pid,
        # Envoy's own view (admin /clusters): health flags and requests in flight on this host.
        "envoy_health": pod.envoy_health,
        "envoy_rq_active": pod.envoy_rq_active,
    }


class ControlServer:
    def __init__(self, twin: Twin) -> None:
        self.twin = twin
        self.rng = random.Random()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="twin-control")
        handler = _make_handler(self)
        for attempt in range(3):  # free_port() can race with another process
            try:
                self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
                break
            except OSError as e:
                if attempt == 2:
                    raise UserError(f"control API: cannot bind a loopback port: {e}") from None
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="twin-control", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._pool.shutdown(wait=False)

    # -- routes ----------------------------------------------------------------------------------

    def get(self, path: str, query: dict[str, str]) -> Any:
        sup = self.twin.supervisor
        assert sup is not None
        since = float(query.get("since", 0) or 0)
        if path == "/pods":
            pods = sup.pods()
            queues = list(self._pool.map(lambda p: pod_queue(p.http_port), pods))
            return [pod_json(p, q) for p, q in zip(pods, queues, strict=True)]
        if path == "/replicas":
            return {"spec": sup.desired, "ready": sup.ready_count()}
        if path == "/timeline":
            return self.twin.log.rows(since)
        if path == "/events":
            return [event_to_dict(e) for e in self.twin.log.events(since)]
        if path == "/scaledobject":
            return self.scaled_object()
        if path == "/endpoints":
            return self.twin.endpoints()
        raise KeyError(path)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        sup = self.twin.supervisor
        assert sup is not None
        if path == "/kill":
            alive = [p.name for p in sup.pods() if p.phase != "Terminating"]
            victims = pick_victims(
                alive,
                pick=body.get("names"),
                count=body.get("count"),
                percent=body.get("percent"),
                rng=self.rng,
            )
            grace = float(body.get("grace_period", 0) or 0)
            return {"killed": sup.kill(victims, grace_period=grace)}
        if path == "/scale":
            replicas = body.get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                raise BadRequest("scale needs an integer 'replicas' >= 0")
            sup.scale(replicas)
            return {"replicas": replicas}
        raise KeyError(path)

    def scaled_object(self) -> dict[str, Any]:
        a = self.twin.spec.autoscaler
        scaler = self.twin.scaler
        status = scaler.status() if scaler is not None else {"active": False}
        return {"spec": a.model_dump() if a else None, "status": status}


def _make_handler(server: ControlServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, code: int, payload: Any) -> None:
            body = json.dumps(payload, default=str).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _handle(self, fn) -> None:
            try:
                self._reply(200, fn())
            except KeyError:
                self._reply(404, {"error": f"no such endpoint: {self.command} {self.path}"})
            except (BadRequest, ValueError, TypeError) as e:
                self._reply(400, {"error": str(e)})
            except Exception as e:  # report, never kill the server thread
                self._reply(500, {"error": f"{type(e).__name__}: {e}"})

        def do_GET(self) -> None:  # noqa: N802 - http.server API
            u = urlparse(self.path)
            query = {k: v[-1] for k, v in parse_qs(u.query).items()}
            self._handle(lambda: server.get(u.path, query))

        def do_POST(self) -> None:  # noqa: N802
            u = urlparse(self.path)

            def run() -> Any:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b"{}"
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError as e:
                    raise BadRequest(f"body is not JSON: {e}") from None
                if not isinstance(body, dict):
                    raise BadRequest("body must be a JSON object")
                return server.post(u.path, body)

            self._handle(run)

        def log_message(self, *args) -> None:
            pass

    return Handler
