"""A minimal stand-in model pod for the twin's own plumbing tests (not the product's model server).

It speaks just enough KServe v2 gRPC (`ModelInfer`, `ModelStreamInfer`) and HTTP (health, metrics)
to exercise HAProxy, Prometheus and the supervisor: each request holds one of `--slots` execution
slots for `sleep_ms` (request parameter, default 5) and waits in a queue when all slots are busy.
Readiness fails while the queue exceeds `--ready-max-queue` (0 = never). Run:
`python -m loadgate.twin.fakepod --pod-name p --grpc-port 1 --http-port 2`.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pbg


class _Pod:
    def __init__(self, name: str, slots: int, ready_max_queue: int) -> None:
        self.name = name
        self.ready_max_queue = ready_max_queue
        self._slots = threading.Semaphore(slots)
        self._lock = threading.Lock()
        self.pending = 0
        self.executing = 0
        self.success = 0

    def run(self, seconds: float) -> None:
        with self._lock:
            self.pending += 1
        self._slots.acquire()
        with self._lock:
            self.pending -= 1
            self.executing += 1
        try:
            time.sleep(seconds)
        finally:
            with self._lock:
                self.executing -= 1
                self.success += 1
            self._slots.release()

    def ready(self) -> bool:
        return not self.ready_max_queue or self.pending <= self.ready_max_queue


def _param(req, key: str, default: int) -> int:
    p = req.parameters.get(key)
    return int(p.int64_param) if p is not None and p.HasField("int64_param") else default


class _Servicer(pbg.GRPCInferenceServiceServicer):
    def __init__(self, pod: _Pod) -> None:
        self.pod = pod

    def ServerLive(self, request, context):
        return pb.ServerLiveResponse(live=True)

    def ServerReady(self, request, context):
        return pb.ServerReadyResponse(ready=self.pod.ready())

    def ModelInfer(self, request, context):
        self.pod.run(_param(request, "sleep_ms", 5) / 1000)
        return pb.ModelInferResponse(model_name=request.model_name, id=self.pod.name)

    def ModelStreamInfer(self, request_iterator, context):
        for req in request_iterator:
            tokens = _param(req, "tokens", 3)
            token_s = _param(req, "token_ms", 2) / 1000
            self.pod.run(0)
            for _ in range(tokens):
                time.sleep(token_s)
                resp = pb.ModelInferResponse(model_name=req.model_name, id=self.pod.name)
                yield pb.ModelStreamInferResponse(infer_response=resp)


def _http_handler(pod: _Pod):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server API
            if self.path == "/v2/health/live":
                code, body = 200, b""
            elif self.path == "/v2/health/ready":
                code, body = (200 if pod.ready() else 503), b""
            elif self.path == "/metrics":
                code = 200
                body = (
                    f'nv_inference_pending_request_count{{model="m",version="1"}} {pod.pending}\n'
                    f'loadgate_inference_executing_count{{model="m",version="1"}} {pod.executing}\n'
                    f'nv_inference_request_success{{model="m",version="1"}} {pod.success}\n'
                ).encode()
            else:
                code, body = 404, b""
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return Handler


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pod-name", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--grpc-port", type=int, required=True)
    ap.add_argument("--http-port", type=int, required=True)
    ap.add_argument("--slots", type=int, default=8)
    ap.add_argument("--ready-max-queue", type=int, default=0)
    a, _ = ap.parse_known_args(argv)
    pod = _Pod(a.pod_name, a.slots, a.ready_max_queue)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=256))
    pbg.add_GRPCInferenceServiceServicer_to_server(_Servicer(pod), server)
    server.add_insecure_port(f"{a.host}:{a.grpc_port}")
    server.start()
    http = ThreadingHTTPServer((a.host, a.http_port), _http_handler(pod))
    http.daemon_threads = True
    threading.Thread(target=http.serve_forever, daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    http.shutdown()
    server.stop(grace=1).wait(2)


if __name__ == "__main__":
    main()
