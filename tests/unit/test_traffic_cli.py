"""`loadgate run` refuses bad input with one line and exit 2, before any load starts."""

import socket

import pytest

from loadgate.cli import main

SCENARIO = """
name: t
arrival: constant
classes: [{name: cv, model: cv, kind: cv}]
phases: [{name: steady, duration_s: 1, rate: 1}]
"""


def run(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", *argv])
    return e.value.code, capsys.readouterr().err


@pytest.fixture
def scenario(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(SCENARIO)
    return p


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


@pytest.mark.timeout(30)
def test_unreachable_target_is_one_line_before_any_load(scenario, tmp_path, capsys):
    out = tmp_path / "out"
    code, err = run(
        [str(scenario), "--target", f"127.0.0.1:{closed_port()}", "--out", str(out)], capsys
    )
    assert code == 2 and err.startswith("loadgate: error: target 127.0.0.1:")
    assert "unreachable" in err and len(err.strip().splitlines()) == 1
    assert not (out / "locust.log").exists()  # Locust was never started


def test_bad_target_syntax_and_missing_file(scenario, tmp_path, capsys):
    code, err = run([str(scenario), "--target", "nohost"], capsys)
    assert code == 2 and "expected HOST:PORT" in err
    code, err = run([str(tmp_path / "none.yaml"), "--target", "127.0.0.1:1"], capsys)
    assert code == 2 and "no such file" in err


def test_missing_metadata_variable_is_reported_by_name(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LG_ABSENT_TOKEN", raising=False)
    p = tmp_path / "s.yaml"
    p.write_text(SCENARIO + "client: {metadata_env: {authorization: LG_ABSENT_TOKEN}}\n")
    code, err = run([str(p), "--target", "127.0.0.1:1"], capsys)
    assert code == 2 and "LG_ABSENT_TOKEN is not set" in err
