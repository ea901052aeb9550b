import subprocess
import sys


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "loadgate.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_help_lists_subcommands():
    r = run("--help")
    assert r.returncode == 0
    for name in ("gate", "twin", "run", "lint"):
        assert name in r.stdout


def test_unknown_subcommand_is_one_line_exit_2():
    r = run("no-such-command")
    assert r.returncode == 2
    assert r.stderr.startswith("loadgate: error: ")
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_bad_option_is_one_line_exit_2():
    r = run("--no-such-flag")
    assert r.returncode == 2
    assert r.stderr.startswith("loadgate: error: ")
