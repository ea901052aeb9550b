"""Scenario YAML: the shipped scenarios load; mistakes are one line naming file and key."""

from pathlib import Path

import pytest

from loadgate.errors import UserError
from loadgate.traffic.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "loadtests" / "scenarios"


def test_shipped_mixed_has_short_long_llm_and_cv():
    sc = load_scenario(SCENARIOS / "mixed.yaml")
    kinds = {(c.kind, c.max_tokens if c.kind != "cv" else None) for c in sc.classes}
    assert ("llm_stream", 50) in kinds and ("llm_stream", 2000) in kinds and ("cv", None) in kinds
    assert sc.open_loop and sc.duration_s < 60


def test_shipped_flood_has_a_flood_phase():
    sc = load_scenario(SCENARIOS / "flood.yaml")
    flood = next(p for p in sc.phases if p.name == "flood")
    assert flood.rate > max(p.rate for p in sc.phases if p.name != "flood")


def write(tmp_path, text):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return p


BASE = """
name: t
arrival: {arrival}
classes:
  - {{name: cv, model: cv, kind: cv{extra}}}
phases:
  - {{name: steady, duration_s: 5, {load}}}
"""


def test_unknown_key_names_file_and_path(tmp_path):
    p = write(tmp_path, BASE.format(arrival="poisson", extra=", wieght: 2", load="rate: 5"))
    with pytest.raises(UserError, match=r"s\.yaml: classes\[0\]\.wieght: unknown key"):
        load_scenario(p)


def test_open_loop_phase_needs_a_rate(tmp_path):
    p = write(tmp_path, BASE.format(arrival="constant", extra="", load="users: 5"))
    with pytest.raises(UserError, match="needs a rate"):
        load_scenario(p)


def test_closed_loop_phase_needs_users(tmp_path):
    p = write(tmp_path, BASE.format(arrival="closed", extra="", load="rate: 5"))
    with pytest.raises(UserError, match="needs users"):
        load_scenario(p)


def test_bad_kind_and_negative_deadline(tmp_path):
    p = write(tmp_path, BASE.format(arrival="poisson", extra=", deadline_s: -1", load="rate: 1"))
    with pytest.raises(UserError, match=r"classes\[0\]\.deadline_s"):
        load_scenario(p)


def test_round_trip_through_yaml(tmp_path):
    sc = load_scenario(SCENARIOS / "mixed.yaml")
    p = write(tmp_path, sc.to_yaml())
    assert load_scenario(p) == sc
