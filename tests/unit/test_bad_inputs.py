"""Every bad input of the table (tests/unit/bad_inputs.py) is one true line and exit 2.

Each case runs `loadgate.cli.main` from a fresh folder with its output captured, as the user's
command would: exit 2, exactly one line `loadgate: error: ...` naming the file and key, no
traceback (an uncaught exception fails the case), nothing on stdout, and nothing written at all
(no run directory, no reports/ folder): most cases fail before anything is created, and none may
leave a half-written file that claims to be complete.
"""

from __future__ import annotations

import http.server
import os
import socket
import threading
from pathlib import Path

import pytest
from bad_inputs import CASES, REPO, Case

from loadgate.cli import main

pytestmark = pytest.mark.timeout(30)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


@pytest.fixture(scope="module")
def ports():
    """{closed}: nothing listens; {http}: an HTTP/1 server (a wrong --target), stopped after."""

    class Quiet(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # the case's stderr is what is judged
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"closed": str(_closed_port()), "http": str(server.server_address[1])}
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_the_table_covers_every_kind_of_input():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "case ids are unique"
    assert len(CASES) >= 95
    first = {c.argv[0] for c in CASES}
    assert first >= {"run", "worker", "gate", "twin", "gameday", "capacity", "compare", "report",
                     "baseline", "lint"}  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_true_line_and_exit_2(case: Case, tmp_path, ports, capsys, monkeypatch):
    values = {"t": str(tmp_path), "repo": str(REPO), **ports}
    for name, content in case.files.items():
        (tmp_path / name).write_text(_fill(content, values))
    if case.setup is not None:
        case.setup(tmp_path)
    for key in ("KUBECONFIG", "LOADGATE_PLATFORM", "LOADGATE_CONFIG", "LOADGATE_CHAOS_SCENARIO"):
        monkeypatch.delenv(key, raising=False)
    for key, value in case.env.items():
        monkeypatch.setenv(key, _fill(value, values))
    monkeypatch.setenv("LOADGATE_TWIN_STATE_DIR", str(tmp_path / "st"))  # never a running twin
    monkeypatch.chdir(tmp_path)  # defaults (reports/, fixtures/k8s, loadgate.yaml) resolve here
    before = _tree(tmp_path)
    capsys.readouterr()

    with pytest.raises(SystemExit) as exit_:
        main([_fill(a, values) for a in case.argv])

    out, err = capsys.readouterr()
    assert exit_.value.code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("loadgate: error: "), err
    assert "Traceback" not in err
    for part in case.expect:
        assert _fill(part, values) in lines[0], f"{part!r} not in {lines[0]!r}"
    assert case.stdout or out == "", out
    assert _tree(tmp_path) == before, "a bad input wrote files"
    assert os.getcwd() == str(tmp_path)
