import pytest
from pydantic import Field

from loadgate.config import StrictModel, load_yaml_model
from loadgate.errors import UserError


class Inner(StrictModel):
    weight: float = Field(gt=0)


class Outer(StrictModel):
    name: str
    classes: list[Inner]


def test_valid_file_loads(tmp_path):
    p = tmp_path / "ok.yaml"
    p.write_text("name: x\nclasses:\n  - weight: 2\n")
    assert load_yaml_model(Outer, p).classes[0].weight == 2


def test_unknown_key_names_file_and_path(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\nclasses:\n  - wieght: 2\n")
    with pytest.raises(UserError) as e:
        load_yaml_model(Outer, p)
    msg = str(e.value)
    assert str(p) in msg and "classes[0].wieght" in msg and "unknown key" in msg


def test_wrong_type_says_what_was_given(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\nclasses:\n  - weight: heavy\n")
    with pytest.raises(UserError, match=r"classes\[0\]\.weight: .*'heavy'"):
        load_yaml_model(Outer, p)


def test_malformed_yaml_gives_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: [unclosed\n")
    with pytest.raises(UserError, match=r"malformed YAML"):
        load_yaml_model(Outer, p)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_yaml_model(Outer, tmp_path / "nope.yaml")
