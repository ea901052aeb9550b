import json

import numpy as np
import pandas as pd
import pytest

from loadgate.cli import main
from loadgate.errors import UserError
from loadgate.judge import check, generator_health
from loadgate.report import Summary, read_summary, write_report, write_summary
from loadgate.schema import SAMPLE_COLUMNS, encode_labels, write_samples, write_timeline


def small_run(t0=1.7e9, n=400):
    rng = np.random.default_rng(0)
    intended = t0 + np.sort(rng.uniform(0, 20, n))
    status = np.where(rng.random(n) < 0.1, "UNAVAILABLE", "OK")
    lat = np.where(status == "OK", 0.1, 0.002)
    s = pd.DataFrame(
        {
            "intended": intended,
            "start": intended + 0.001,
            "first_byte": intended + 0.01,
            "end": intended + 0.001 + lat,
            "cls": np.where(np.arange(n) % 2 == 0, "cv", "llm-short"),
            "model": "m",
            "status": status,
            "served_by": np.where(status == "OK", "10.0.0.1:8001", ""),
            "tokens": 50,
            "bytes": 10,
            "phase": np.where(intended < t0 + 10, "steady", "flood"),
            "worker": "w0",
            "request_id": "",
            "error": "",
        }
    )[SAMPLE_COLUMNS]
    tl = pd.DataFrame(
        {
            "time": t0 + np.arange(0.0, 21.0),
            "source": "twin",
            "metric": "replicas_ready",
            "labels": encode_labels({}),
            "value": 2.0,
        }
    )
    return s, tl


def summary(run_id, imbalance, s):
    return Summary(
        run_id=run_id,
        scenario="mixed",
        stack="twin",
        gates=[
            check("balance", "inflight_imbalance_p95", imbalance, "<=", 1.5),
            check("fail_fast", "reject_p99_ms", 3.0, "<=", 50, "ms"),
        ],
        generator=generator_health(s, target_rate=20.0),
        figures={"replica_seconds": 40.0},
    )


def test_summary_round_trips(tmp_path):
    s, _ = small_run()
    write_summary(tmp_path, summary("r1", 1.2, s))
    back = read_summary(tmp_path)
    assert back == summary("r1", 1.2, s) and back.passed
    assert not summary("r2", 2.0, s).passed
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["gates"][0]["threshold"] == 1.5 and data["generator"]["sent"] == 400


def test_bad_summaries_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        read_summary(tmp_path)
    (tmp_path / "summary.json").write_text('{"run_id": "x", "scenario": "s", "stack": "t", "x": 1}')
    with pytest.raises(UserError, match="summary.json: x: unknown key"):
        read_summary(tmp_path)


def test_cli_renders(tmp_path, capsys):
    s, tl = small_run()
    for rid, imb in (("a", 1.2), ("b", 1.8)):
        d = tmp_path / rid
        write_summary(d, summary(rid, imb, s))
        write_samples(s, d / "samples.parquet")
        write_timeline(tl, d / "timeline.parquet")
    with pytest.raises(SystemExit) as e:
        main(["report", str(tmp_path / "a")])
    assert e.value.code == 0
    html = (tmp_path / "a" / "report.html").read_text()
    assert 'id="verdicts"' in html and html.count("data:image/png;base64,") == 5
    with pytest.raises(SystemExit) as e:
        main(["report", str(tmp_path / "missing")])
    assert e.value.code == 2
    assert "loadgate: error:" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["report", "compare", str(tmp_path / "a"), str(tmp_path / "b")])
    assert e.value.code == 2
    assert "is now `loadgate compare BASELINE CANDIDATE`" in capsys.readouterr().err


def test_report_of_an_empty_run_still_renders(tmp_path):
    from loadgate.schema import empty_samples, empty_timeline

    s = Summary(run_id="e", scenario="none", stack="twin")
    html = write_report(tmp_path, s, empty_samples(), empty_timeline()).read_text()
    assert "no gates were evaluated" in html
