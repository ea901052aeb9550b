"""pytest plugin of the gate (loaded by the root conftest.py as `loadgate.gate.plugin`).

Options: `--stack twin|kubernetes`, `--config loadgate.yaml`, `--report-dir reports`,
`--twin-override KEY=VALUE` (repeatable: lb=round_robin, max_requests=0, ready_max_queue=0,
no_autoscaler=true, time_scale=0.1 ...), `--run-id`.

Fixtures: `run_gate(name=None, during=None) -> GateRun` (the gate named by the test's
`@pytest.mark.gate("...")` marker when `name` is omitted), `gate_session`, `gate_config`.

The plugin is inert unless the session collects a test marked `gate` or is started on a path in
a `loadtests/` folder, so loadgate's own tests (tests/) pay nothing for it: heavy imports happen
inside the fixtures. In gate mode JUnit XML is always written to the run directory, and at the end
`summary.json`, the combined samples and timeline and `report.html` are written and the verdict
table and the report's path are printed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_KEY = pytest.StashKey["object"]()  # the GateSession (typed loosely: its module is imported late)
_ACTIVE = pytest.StashKey[bool]()
STOPPED_BY = "stopped_by.txt"  # the user error that ended a session early, in its run directory


def stopped_by(run_dir: Path) -> str:
    """The user error that stopped the session in run_dir ("" if none did)."""
    try:
        return (run_dir / STOPPED_BY).read_text().strip()
    except OSError:
        return ""


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("loadgate", "loadgate gate")
    g.addoption(
        "--stack",
        choices=("twin", "kubernetes"),
        default=None,
        help="stack to verify (default: loadgate.yaml's stack.kind)",
    )
    g.addoption(
        "--config",
        dest="loadgate_config",
        default=None,
        help="loadgate.yaml (default: the one in the rootdir)",
    )
    g.addoption("--report-dir", default=None, help="folder of run directories (default: reports)")
    g.addoption(
        "--twin-override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a twin setting, e.g. lb=round_robin (repeatable)",
    )
    g.addoption("--run-id", default=None, help="name of the run directory (default: gate-<time>)")


def _gate_mode(config: pytest.Config) -> bool:
    if config.getoption("loadgate_config") or config.getoption("twin_override"):
        return True
    for arg in config.args:
        path = Path(str(arg).split("::")[0]).resolve()
        if "loadtests" in path.parts:
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gate(name): a gate of the verification suite (loadtests/)")
    active = _gate_mode(config)
    config.stash[_ACTIVE] = active
    if not active:
        return
    from loadgate import completion
    from loadgate.errors import UserError
    from loadgate.gate.config import prepare
    from loadgate.gate.session import GateSession, new_run_id

    path = Path(config.getoption("loadgate_config") or Path(config.rootpath) / "loadgate.yaml")
    try:
        cfg, scenarios = prepare(path, config.getoption("twin_override"), config.getoption("stack"))
    except UserError as e:
        raise pytest.UsageError(f"loadgate: error: {e}") from None
    report_dir = Path(config.getoption("report_dir") or cfg.report_dir)
    if not report_dir.is_absolute():
        report_dir = Path(config.rootpath) / report_dir
    run_dir = report_dir / (config.getoption("run_id") or new_run_id())
    completion.begin(run_dir, "loadgate gate")  # removed once summary and report are written
    tr = config.pluginmanager.get_plugin("terminalreporter")

    def say(msg: str) -> None:
        if tr is not None:
            tr.write_line(msg)
        else:
            print(msg, flush=True)

    config.stash[_KEY] = GateSession(cfg, scenarios, run_dir, say, cfg_source=str(path))
    if not getattr(config.option, "xmlpath", None):  # JUnit XML always, in the run directory
        config.option.xmlpath = str(run_dir / "junit.xml")
    os.environ.setdefault("LOADGATE_GATE_RUN_DIR", str(run_dir))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Gates run in a fixed order (scale-up last: it leaves the stack scaled)."""
    if not config.stash.get(_ACTIVE, False):
        return
    from loadgate.gate.catalogue import order_key

    def key(item: pytest.Item) -> tuple[int, str]:
        m = item.get_closest_marker("gate")
        return order_key(m.args[0]) if m and m.args else (-1, "")

    if any(i.get_closest_marker("gate") for i in items):
        items.sort(key=key)


def _session(request: pytest.FixtureRequest):
    s = request.config.stash.get(_KEY, None)
    if s is None:
        pytest.fail(
            "loadgate gate mode is off: run the gates as `pytest loadtests` or `loadgate gate`"
        )
    return s


@pytest.fixture(scope="session")
def gate_session(request: pytest.FixtureRequest):
    """The session: config, stack (booted at the first gate), runs. The stack stops at the end."""
    s = _session(request)
    yield s
    s.close()


@pytest.fixture(scope="session")
def gate_config(gate_session):
    return gate_session.cfg


@pytest.fixture
def run_gate(request: pytest.FixtureRequest, gate_session):
    """`run_gate(name=None, during=None) -> GateRun`: settle the stack, run the gate's scenario
    (with `during(platform, load_start)` in a background thread), collect samples and timeline."""
    marker = request.node.get_closest_marker("gate")

    def run(name: str | None = None, during=None):
        gate = name or (marker.args[0] if marker and marker.args else None)
        if gate is None:
            pytest.fail("run_gate(): no gate name and no @pytest.mark.gate('...') marker")
        from loadgate.errors import UserError

        try:
            return gate_session.run_gate(gate, during=during)
        except UserError as e:  # e.g. the stack cannot be reached: a user problem, stop the session
            (gate_session.run_dir / STOPPED_BY).write_text(f"{e}\n")  # `loadgate gate`'s line
            pytest.exit(f"loadgate: error: {e}", returncode=2)

    return run


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    rep = outcome.get_result()
    s = item.config.stash.get(_KEY, None)
    m = item.get_closest_marker("gate")
    if s is None or m is None or not m.args or not rep.failed:
        return
    gate = m.args[0]
    run = s.runs.get(gate)
    if run is not None and run.status != "PASS":
        return  # its verdicts already say why
    exc = call.excinfo
    why = exc.exconly().splitlines()[0][:300] if exc is not None else str(rep.longrepr)[:300]
    s.errors[gate] = f"{rep.when} error: {why}"


@pytest.hookimpl(trylast=True)  # after junitxml has written its file
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    s = session.config.stash.get(_KEY, None)
    if s is None:
        return
    s.close()
    s.written = s.write()
    from loadgate import completion
    from loadgate.gate import catalogue
    from loadgate.gate.junit import mark_invalid

    invalid = {
        catalogue.get(g).test_name: r.invalid_reason
        for g, r in s.runs.items()
        if r.status == "INVALID" and g not in s.errors
    }
    xml = getattr(session.config.option, "xmlpath", None)
    if xml:
        mark_invalid(Path(xml), invalid)
    # Exit 3 (not 1) when gates were INVALID and none FAILED: CI can retry, not blame the stack.
    failed = s.errors or any(r.status == "FAIL" for r in s.runs.values())
    if invalid and exitstatus == pytest.ExitCode.TESTS_FAILED and not failed:
        session.exitstatus = 3
    completion.finish(s.run_dir)  # junit.xml, summary.json and report.html are whole


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    s = config.stash.get(_KEY, None)
    if s is None or getattr(s, "written", None) is None:
        return
    from loadgate.gate.session import format_table

    terminalreporter.section("loadgate verdicts")
    for line in format_table(s.verdicts()).splitlines():
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"report: {s.written / 'report.html'}")
