"""Typed, strict configuration: every YAML file loadgate reads is validated by a pydantic model.

`StrictModel` forbids unknown keys, so a misspelt key is an error that names it. `load_yaml_model`
turns YAML and validation errors into one `UserError` line naming the file and the key path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from loadgate.errors import UserError

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)


def key_path(loc: tuple[Any, ...]) -> str:
    """('traffic', 'classes', 0, 'weight') -> 'traffic.classes[0].weight'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<top level>"


def describe_validation_error(
    err: ValidationError, source: str, prefix: tuple[Any, ...] = ()
) -> str:
    """One line for the first problem (and a count of the others); `prefix` is the key path of
    the validated part inside its file."""
    # A misspelt key also makes its intended key "missing"; naming the misspelling helps more.
    errors = sorted(err.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    # Pydantic puts union/discriminator tags into loc; they mean nothing to a user.
    loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    elif first["type"] in ("model_type", "dict_type", "model_attributes_type"):
        msg = f"expected a mapping of keys, got {_kind(first.get('input'))}"
    elif first["type"] in ("value_error", "assertion_error"):
        # our own validators say what and where; pydantic's prefix says nothing more
        msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if "input" in first and isinstance(first["input"], str):
            msg = f"{msg} (got {first['input']!r})"
    elif "input" in first and first["type"] != "missing" and not isinstance(first["input"], dict):
        msg = f"{msg} (got {first['input']!r})"
    more = (
        f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        if len(errors) > 1
        else ""
    )
    where = prefix + loc
    return f"{source}: {key_path(where) + ': ' if where else ''}{msg}{more}"


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (an empty file?)"
    return {list: "a list", str: "a string"}.get(type(value), type(value).__name__)


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; a missing file or a syntax error is a UserError naming the file."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise UserError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{p}: is a directory, not a YAML file") from None
    except UnicodeDecodeError as e:
        raise UserError(f"{p}: not UTF-8 text (byte {e.start}), not a YAML file") from None
    except OSError as e:
        raise UserError(f"{p}: cannot read: {e.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UserError(f"{p}:{where}: malformed YAML: {problem}") from None


def validate(model: type[M], data: Any, source: str, prefix: tuple[Any, ...] = ()) -> M:
    """Validate already-parsed data; errors become one UserError line (`prefix`: the key path
    of `data` inside its file)."""
    if data is None:
        data = {}
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise UserError(describe_validation_error(e, source, prefix)) from None


def load_yaml_model(model: type[M], path: str | Path) -> M:
    """Read and validate one YAML file as `model` (an empty file is said to be empty)."""
    data = read_yaml(path)
    if data is None:
        raise UserError(f"{path}: empty file (expected a {model.__name__.lower()})")
    return validate(model, data, str(path))
