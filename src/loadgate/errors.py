"""Errors a user can fix. The CLI turns them into one line `loadgate: error: ...` and exit 2."""


class UserError(Exception):
    """Bad input: malformed config, unknown key, unreachable target, missing binary, wrong context.

    The message is shown as is after `loadgate: error: `; keep it to one line that says what was
    wrong and what was expected.
    """


class GateFailed(Exception):
    """One or more gates failed (exit 1). Not a user error."""


class MeasurementInvalid(Exception):
    """A measurement could not be trusted and nothing failed (exit 3): retry, do not blame the
    stack."""


def one_line(text: str, limit: int | None = None) -> str:
    """`text` as one line; past `limit` characters cut at a word boundary, marked with "...",
    never mid-word."""
    line = " ".join(part.strip() for part in str(text).splitlines() if part.strip())
    if limit is None or len(line) <= limit:
        return line
    cut = line[: limit - 3]
    head = cut.rsplit(" ", 1)[0] if " " in cut else cut
    return head.rstrip(" ,;:(") + "..."
