"""mTLS and call metadata from the environment: a gRPC server that requires a client
certificate and a bearer token gets both from loadgate's users; the token's value is written to
no file of the run."""

from __future__ import annotations

import subprocess
from concurrent import futures

import grpc
import pytest
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc

from loadgate.procs import free_port
from loadgate.traffic.runner import run_scenario
from loadgate.traffic.scenario import Scenario

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TOKEN = "Bearer tls-test-s3cret-value"


def openssl(*args: str, cwd) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


@pytest.fixture
def pki(tmp_path, need_binary):
    need_binary("openssl")
    d = tmp_path / "pki"
    d.mkdir()
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        cwd=d,
    )
    for name, san in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"), ("client", None)):
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={name}",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            cwd=d,
        )
        ext = ["-extfile", "ext.cnf"] if san else []
        if san:
            (d / "ext.cnf").write_text(san + "\n")
        openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            f"{name}.pem",
            *ext,
            cwd=d,
        )
    return d


class Guarded(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self):
        self.authorized = 0

    def _check(self, context):
        md = dict(context.invocation_metadata())
        if md.get("authorization") != TOKEN:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad token")
        self.authorized += 1
        context.send_initial_metadata((("x-pod-name", "tls-pod"),))

    def ServerLive(self, request, context):
        return pb.ServerLiveResponse(live=True)

    def ModelInfer(self, request, context):
        self._check(context)
        return pb.ModelInferResponse(model_name=request.model_name)

    def ModelStreamInfer(self, request_iterator, context):
        self._check(context)
        for req in request_iterator:
            for _ in range(3):
                yield pb.ModelStreamInferResponse(
                    infer_response=pb.ModelInferResponse(model_name=req.model_name)
                )


@pytest.fixture
def mtls_server(pki):
    servicer = Guarded()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, server)
    creds = grpc.ssl_server_credentials(
        [((pki / "server.key").read_bytes(), (pki / "server.pem").read_bytes())],
        root_certificates=(pki / "ca.pem").read_bytes(),
        require_client_auth=True,
    )
    port = free_port()
    server.add_secure_port(f"127.0.0.1:{port}", creds)
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        server.stop(grace=1).wait(5)


def test_mtls_and_token_from_env(mtls_server, pki, tmp_path, monkeypatch):
    target, servicer = mtls_server
    monkeypatch.setenv("LG_TEST_TOKEN", TOKEN)
    sc = Scenario.model_validate(
        {
            "name": "tls",
            "arrival": "constant",
            "classes": [
                {"name": "s", "model": "llm", "kind": "llm_stream"},
                {"name": "u", "model": "cv", "kind": "cv"},
            ],
            "phases": [{"name": "steady", "duration_s": 3, "rate": 10}],
            "client": {
                "tls": {
                    "ca": str(pki / "ca.pem"),
                    "cert": str(pki / "client.pem"),
                    "key": str(pki / "client.key"),
                },
                "metadata_env": {"authorization": "LG_TEST_TOKEN"},
            },
        }
    )
    out = tmp_path / "run"
    r = run_scenario(sc, target, out)
    assert len(r.samples) == 30 and (r.samples["status"] == "OK").all()
    assert servicer.authorized == 30 and set(r.samples["served_by"]) == {"tls-pod"}
    assert (r.samples[r.samples["cls"] == "s"]["tokens"] == 3).all()
    for f in out.rglob("*"):
        if f.is_file():
            assert b"s3cret" not in f.read_bytes(), f"token value leaked into {f}"
