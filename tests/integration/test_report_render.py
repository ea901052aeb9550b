"""Render a report from a synthetic run and open it in headless Chromium: the verdict table and
every plot must be in the DOM, the images must decode, and nothing may point outside the file."""

import base64
import io
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from loadgate.judge import check, generator_health
from loadgate.report import Summary, write_report
from loadgate.schema import SAMPLE_COLUMNS, encode_labels

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def synthetic_run(t0=1.7e9, n=4000, seed=3):
    rng = np.random.default_rng(seed)
    intended = t0 + np.sort(rng.uniform(0, 90, n))
    phase = np.select(
        [intended < t0 + 20, intended < t0 + 60, intended < t0 + 75],
        ["warmup", "steady", "flood"],
        "cooldown",
    )
    cls = rng.choice(["llm-short", "llm-long", "cv"], n, p=[0.5, 0.1, 0.4])
    lat = np.select(
        [cls == "llm-long", cls == "cv"],
        [rng.normal(8, 0.5, n), rng.gamma(4, 0.005, n)],
        rng.gamma(4, 0.05, n),
    )
    status = np.where((phase == "flood") & (rng.random(n) < 0.4), "UNAVAILABLE", "OK")
    lat = np.where(status == "OK", lat, 0.003)
    pods = np.array(["10.0.0.1:8001", "10.0.0.2:8001", "10.0.0.3:8001"])
    start = intended + rng.exponential(0.001, n)
    s = pd.DataFrame(
        {
            "intended": intended,
            "start": start,
            "first_byte": start + lat / 10,
            "end": start + lat,
            "cls": cls,
            "model": cls,
            "status": status,
            "served_by": np.where(status == "OK", pods[rng.integers(0, 3, n)], ""),
            "tokens": np.select([cls == "llm-long", cls == "cv"], [2000, 0], 50),
            "bytes": 100,
            "phase": phase,
            "worker": "w0",
            "request_id": "",
            "error": "",
        }
    )[SAMPLE_COLUMNS]
    tt = np.arange(0.0, 100.0)
    tl = pd.DataFrame(
        {
            "time": t0 + tt,
            "source": "twin",
            "metric": "replicas_ready",
            "labels": encode_labels({"deployment": "model"}),
            "value": np.where(tt < 65, 3.0, 5.0),
        }
    )
    chaos = pd.DataFrame(
        {
            "time": [t0 + 40.0],
            "source": "chaos",
            "metric": "kill_pod",
            "labels": [encode_labels({"pod": "pod-b"})],
            "value": [1.0],
        }
    )
    summary = Summary(
        run_id="synthetic-1",
        scenario="mixed",
        stack="twin",
        started=t0,
        gates=[
            check("balance", "inflight_imbalance_p95", 1.21, "<=", 1.5),
            check("fail_fast", "reject_p99_ms", 3.2, "<=", 50, "ms"),
            check("scale_up", "time_to_capacity_s", None, "<=", 60, "s"),
        ],
        generator=generator_health(s, target_rate=44.0),
    )
    return summary, s, pd.concat([tl, chaos], ignore_index=True)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is required for this test (make setup installs it)")
    d = tmp_path_factory.mktemp("report")
    summary, samples, timeline = synthetic_run()
    path = write_report(d, summary, samples, timeline, max_replicas=6)
    base = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={d / 'profile'}"]
    dom = subprocess.run(
        [*base, "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=90
    ).stdout
    shot = d / "shot.png"
    subprocess.run(
        [*base, "--window-size=1200,2600", f"--screenshot={shot}", path.as_uri()],
        capture_output=True,
        timeout=90,
    )
    return path, dom, shot


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_verdict_table_is_rendered_first(rendered):
    _, dom, _ = rendered
    assert '<table id="verdicts">' in dom
    rows = re.findall(r'<tr class="(passed|failed)">', dom)
    assert rows == ["passed", "passed", "failed"]
    assert dom.index('id="verdicts"') < dom.index("<img")
    assert "FAIL" in dom and "inflight_imbalance_p95" in dom


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_every_plot_is_present_and_decodes(rendered):
    import matplotlib.image as mpimg

    _, dom, _ = rendered
    imgs = re.findall(
        r'<img class="plot" id="plot-(\w+)"[^>]*src="data:image/png;base64,([^"]+)"', dom
    )
    assert [i for i, _ in imgs] == ["latency", "inflight", "replicas", "rejections", "lag"]
    for _, b64 in imgs:
        pixels = mpimg.imread(io.BytesIO(base64.b64decode(b64)), format="png")
        assert pixels.shape[0] > 150 and pixels.shape[1] > 500
        assert pixels.std() > 0.01  # not a blank canvas


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_the_report_references_nothing_outside_itself(rendered):
    path, dom, shot = rendered
    html = path.read_text()
    for text in (html, dom):
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", text)
        assert not re.search(r"url\(|@import|<script|<link", text)
    assert shot.exists() and shot.stat().st_size > 50_000  # the page painted
