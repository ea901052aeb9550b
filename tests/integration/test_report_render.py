"""Reports opened in headless Chromium at 1400 x 900, as an SRE opens them: a gate session with a
FAIL, a kill gameday, an interrupted gameday. Element boxes come from the DevTools protocol;
screenshots (the first screen and the whole page) are kept under the test's tmp dir and copied
to reports/test-artifacts/report-render/ (git-ignored).

Checked: the verdict badge and the reason for a FAIL are on the first screen, unobscured; every
INVALID row shows its reason; the plots are full width and not scaled down; the events are
listed below the first plot; the killed pod is named and marked; an interrupted run says
INTERRUPTED, not FAIL; nothing points outside the file."""

from __future__ import annotations

import base64
import io
import re
import shutil
from html import unescape
from pathlib import Path

import matplotlib.image as mpimg
import pytest
from headless_chromium import Chromium
from report_runs import gate_session, write_gameday_dir

from loadgate.chaos.gameday import write_gameday_report
from loadgate.judge.inflight import span
from loadgate.report import plots, write_report
from loadgate.report.events import timeline_markers
from loadgate.schema import read_samples

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

VIEW_W, VIEW_H = 1400, 900
ARTIFACTS = Path(__file__).resolve().parents[2] / "reports" / "test-artifacts" / "report-render"
FAIL_RGB, PASS_RGB, INTERRUPTED_RGB = (192, 57, 43), (30, 132, 73), (86, 101, 115)

# Boxes in page coordinates (top/bottom include the scroll offset, which is 0 at load);
# `unobscured`: the element itself is what a click at its centre would hit.
MEASURE = """(() => {
  const vw = innerWidth, vh = innerHeight;
  const box = el => {
    if (!el) return null;
    const r = el.getBoundingClientRect(), cs = getComputedStyle(el);
    const cx = r.left + r.width / 2, cy = r.top + r.height / 2;
    const hit = (cy >= 0 && cy < vh && cx >= 0 && cx < vw) ? document.elementFromPoint(cx, cy) : null;
    return {top: r.top + scrollY, bottom: r.bottom + scrollY, left: r.left, right: r.right,
            width: r.width, height: r.height, text: el.innerText,
            visible: r.width > 0 && r.height > 0 && cs.visibility === 'visible'
                     && cs.display !== 'none' && parseFloat(cs.opacity) > 0.5,
            unobscured: hit !== null && (hit === el || el.contains(hit)),
            background: cs.backgroundColor};
  };
  const q = s => document.querySelector(s), qa = s => [...document.querySelectorAll(s)];
  const rows = s => qa(s).map(tr => [...tr.cells].map(td => td.innerText.trim()));
  const bcs = getComputedStyle(document.body);
  return {
    viewport: [vw, vh],
    content: document.body.clientWidth - parseFloat(bcs.paddingLeft) - parseFloat(bcs.paddingRight),
    badge: box(q('#badge')), headline: box(q('#headline')), interrupted: box(q('#interrupted')),
    firstRow: (q('#verdicts tbody tr') || {}).className,
    failMessages: qa('#verdicts tr.v-fail td.msg').map(box),
    invalidRows: qa('#verdicts tr.v-invalid').length,
    invalidReasons: qa('#verdicts tr.v-invalid .reason').map(box),
    plots: qa('img.plot').map(i => ({id: i.id, complete: i.complete,
                                    natural: [i.naturalWidth, i.naturalHeight], ...box(i)})),
    events: qa('#events li').map(box),
    killed: qa('#pods tr.killed').map(box), killedMark: qa('#pods tr.killed .killed-mark').map(box),
    classes: rows('#classes tbody tr'), errors: rows('#errors tbody tr'),
    html: document.documentElement.outerHTML,
  };
})()"""

PUSH_DOWN = """(() => { const d = document.createElement('div'); d.style.height = '1200px';
  document.body.insertBefore(d, document.body.firstChild); })()"""


def on_first_screen(b: dict) -> bool:
    return (
        b is not None
        and b["visible"]
        and b["unobscured"]
        and b["top"] >= 0
        and b["bottom"] <= VIEW_H
    )


def fold_problems(m: dict) -> list[str]:
    """What an SRE would not see without scrolling: the verdict, and for a FAIL its reason."""
    problems = []
    if not on_first_screen(m["badge"]):
        problems.append("the verdict badge is not on the first screen")
    if m["failMessages"] and not on_first_screen(m["failMessages"][0]):
        problems.append("the FAIL reason is not on the first screen")
    return problems


def rgb(css: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", css)[:3])


def pixel(png: Path, x: float, y: float) -> tuple[int, ...]:
    img = mpimg.imread(png)
    return tuple(round(float(c) * 255) for c in img[int(y), int(x), :3])


@pytest.fixture(scope="module")
def chromium_binary():
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium is required for this test (make test installs it)")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The three reports, with what the test needs to know about their data."""
    d = tmp_path_factory.mktemp("reports")
    summary, samples, timeline = gate_session()
    gate = write_report(d / "gate", summary, samples, timeline, target_inflight=16, max_replicas=6)
    t0, t1 = float(samples["intended"].min()), span(samples)[1]
    out = {"gate": {"path": gate, "markers": len(timeline_markers(timeline, t0, t1))}}
    for name, kw in (("gameday-kill", {}), ("gameday-interrupted", {"interrupted": True})):
        journal, experiment, victim = write_gameday_dir(d / name, **kw)
        out[name] = {
            "path": write_gameday_report(d / name, journal, experiment),
            "victim": victim,
            "samples": read_samples(d / name / "samples.parquet"),
        }
    return out


@pytest.fixture(scope="module")
def pages(runs, chromium_binary, tmp_path_factory):
    """Each report measured and photographed in one browser, closed before the tests judge."""
    shots = tmp_path_factory.mktemp("screenshots")
    out = {}
    with Chromium(chromium_binary, shots / "profile") as browser:
        for name, run in runs.items():
            page = browser.open(run["path"].as_uri(), VIEW_W, VIEW_H)
            m = page.evaluate(MEASURE)
            m["screen"] = page.screenshot(shots / f"{name}-first-screen.png")
            m["full"] = page.screenshot(shots / f"{name}-full-page.png", full_page=True)
            if name == "gate":  # the same page with its verdicts pushed below the fold
                page.evaluate(PUSH_DOWN)
                out["gate-pushed-down"] = page.evaluate(MEASURE)
            out[name] = m
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name, run in runs.items():
        for png in shots.glob(f"{name}-*.png"):
            shutil.copy(png, ARTIFACTS / png.name)
        shutil.copy(run["path"], ARTIFACTS / f"{name}.html")
    return out


def test_a_fail_and_its_reason_are_on_the_first_screen(pages):
    m = pages["gate"]
    assert m["viewport"] == [VIEW_W, VIEW_H]
    assert fold_problems(m) == []
    assert m["badge"]["text"] == "FAIL" and rgb(m["badge"]["background"]) == FAIL_RGB
    assert m["headline"]["text"].startswith("1 of 23 figures FAIL")
    assert m["firstRow"] == "v-fail"
    assert "measured 24 s, expected <= 16 s" in m["failMessages"][0]["text"]
    # the screenshot shows it: the badge's pixels are the FAIL colour
    b = m["badge"]
    assert pixel(m["screen"], b["left"] + 4, b["top"] + 4) == FAIL_RGB


def test_the_fold_check_catches_a_reason_below_the_fold(pages):
    assert fold_problems(pages["gate-pushed-down"]) == [
        "the verdict badge is not on the first screen",
        "the FAIL reason is not on the first screen",
    ]


def test_every_invalid_row_shows_its_reason(pages):
    m = pages["gate"]
    assert m["invalidRows"] == 6 and len(m["invalidReasons"]) == 6
    for r in m["invalidReasons"]:
        assert r["visible"] and "could not keep their simulated time" in r["text"]


def test_plots_are_full_width_and_not_scaled_down(pages):
    m = pages["gate"]
    assert [p["id"] for p in m["plots"]] == [
        "plot-latency",
        "plot-inflight",
        "plot-replicas",
        "plot-rejections",
        "plot-lag",
    ]
    for p in m["plots"]:
        assert p["complete"] and p["natural"] == [1360, 390] and p["visible"]
        assert p["width"] >= 0.97 * m["content"]
        # drawn at (nearly) its own pixels: 10 pt legends and labels stay 10 pt
        assert 0.95 <= p["width"] / p["natural"][0] <= 1.0


def test_events_are_listed_below_the_first_plot(runs, pages):
    m = pages["gate"]
    latency, inflight = m["plots"][0], m["plots"][1]
    assert len(m["events"]) == runs["gate"]["markers"] >= 15
    for e in m["events"]:
        assert e["visible"] and latency["bottom"] <= e["top"] and e["bottom"] <= inflight["top"]
    texts = [e["text"] for e in m["events"]]
    assert any("pod killed modelserver-7c9d5-b2q" in t and "SIGKILL" in t for t in texts)
    assert any("not ready modelserver-7c9d5-a2x" in t for t in texts)
    # the pod-kill gate's victim, known from the twin's record alone, is marked in the pods table
    assert [k["text"].split()[0] for k in m["killed"]] == ["modelserver-7c9d5-b2q"]


def test_a_kill_gameday_names_and_marks_the_killed_pod(runs, pages):
    m, run = pages["gameday-kill"], runs["gameday-kill"]
    assert fold_problems(m) == [] and m["badge"]["text"] == "PASS"
    assert rgb(m["badge"]["background"]) == PASS_RGB
    assert len(m["killed"]) == 1 and m["killed"][0]["text"].startswith(run["victim"])
    assert m["killedMark"][0]["visible"] and m["killedMark"][0]["text"] == "KILLED"
    assert any(f"pod killed {run['victim']}" in e["text"] for e in m["events"])
    assert "127.0.0.1:4300" not in " ".join(e["text"] for e in m["events"])  # names, not ip:port


def test_cancellations_at_the_stop_are_not_errors(runs, pages):
    m, s = pages["gameday-kill"], runs["gameday-kill"]["samples"]
    long = next(r for r in m["classes"] if r[0] == "llm-long")
    cancelled = int(((s["cls"] == "llm-long") & (s["status"] == "CANCELLED")).sum())
    failed = int(((s["cls"] == "llm-long") & (s["status"] == "INTERNAL")).sum())
    # class, calls, OK, OK share, rejected, errors, cancelled at stop, p50, p99
    assert cancelled > 0 and (long[5], long[6]) == (str(failed), str(cancelled))
    assert [r[0] for r in m["errors"]] == ["INTERNAL"]  # no CANCELLED among the errors
    assert m["errors"][0][2] == str(int((s["status"] == "INTERNAL").sum()))


def test_an_interrupted_gameday_says_interrupted_not_fail(pages):
    m = pages["gameday-interrupted"]
    assert m["badge"]["text"] == "INTERRUPTED" and on_first_screen(m["badge"])
    assert rgb(m["badge"]["background"]) == INTERRUPTED_RGB
    b = m["badge"]
    assert pixel(m["screen"], b["left"] + 4, b["top"] + 4) == INTERRUPTED_RGB
    assert on_first_screen(m["interrupted"]) and "interrupted" in m["interrupted"]["text"]


def test_screenshots_are_kept_as_artifacts(pages):
    for name in ("gate", "gameday-kill", "gameday-interrupted"):
        screen = mpimg.imread(pages[name]["screen"])
        assert screen.shape[:2] == (VIEW_H, VIEW_W)
        assert mpimg.imread(pages[name]["full"]).shape[0] > 2 * VIEW_H
        assert (ARTIFACTS / f"{name}-first-screen.png").exists()
        assert (ARTIFACTS / f"{name}.html").exists()


def test_the_report_references_nothing_outside_itself(runs, pages):
    for name, run in runs.items():
        for text in (run["path"].read_text(), pages[name]["html"]):
            assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", text)
            assert not re.search(r"url\(|@import|<script|<link", text)
        for b64 in re.findall(
            r'src="data:image/png;base64,([^"]+)"', unescape(run["path"].read_text())
        ):
            pixels = mpimg.imread(io.BytesIO(base64.b64decode(b64)), format="png")
            assert pixels.shape[:2] == (
                round(plots.SIZE[1] * plots.DPI),
                round(plots.SIZE[0] * plots.DPI),
            )
            assert pixels.std() > 0.01  # not a blank canvas
