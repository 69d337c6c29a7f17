"""Reading a user-written YAML file (a catalog, a dataset spec) up to the schema check, and the
issue and error types that name the file, the entry and the field of each problem, with a hint."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

# libyaml's parser when PyYAML was built with it (the same safe subset, several times faster)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class InputIssue:
    """One problem in a user-written file: the file, the entry (if any), the field, and the fix."""

    file: str
    entry: str | None
    field: str | None
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        where = [self.file]
        if self.entry:
            where.append(self.entry)
        if self.field:
            where.append(f"field '{self.field}'")
        text = f"{', '.join(where)}: {self.message}"
        return f"{text}\n    hint: {self.hint}" if self.hint else text


class InputError(ValueError):
    """A user-written file failed validation; ``issues`` lists every problem found."""

    what = "input file"

    def __init__(self, issues: list[InputIssue]):
        self.issues = issues
        noun = "problem" if len(issues) == 1 else "problems"
        super().__init__(f"{len(issues)} {noun} in {self.what}:\n" + "\n".join(f"  - {i}" for i in issues))


def read_yaml_mapping(
    path: Path, fail: Callable[[str, str | None], Exception], hint: str
) -> tuple[bytes, dict]:
    """The file's bytes and its YAML mapping.

    ``fail(message, hint)`` builds the exception raised when the file cannot be read, is not valid
    YAML (the message gives line and column) or is not a mapping (``hint`` says what is expected).
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise fail(f"cannot read: {exc.strerror}", None) from exc
    try:
        raw = yaml.load(data, Loader=_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise fail(f"not valid YAML{where}: {getattr(exc, 'problem', exc)}", None) from exc
    if not isinstance(raw, dict):
        raise fail("the file is not a YAML mapping", hint)
    return data, raw


def load_error_message(path: Path, exc: Exception) -> str:
    """What to log for a user file that failed to load: a validation error already names the file,
    entry and field; anything else gets the file name and the exception."""
    if isinstance(exc, InputError):
        return str(exc)
    return f"{path}: {type(exc).__name__}: {exc} (not loaded; the other files carry on)"
