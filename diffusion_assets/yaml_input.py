"""Reading a user-written YAML file (a catalog, a dataset spec) up to the schema check."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml


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
        raw = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise fail(f"not valid YAML{where}: {getattr(exc, 'problem', exc)}", None) from exc
    if not isinstance(raw, dict):
        raise fail("the file is not a YAML mapping", hint)
    return data, raw
