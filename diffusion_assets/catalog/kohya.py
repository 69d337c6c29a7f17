"""Import kohya-style prompt lines (sd-scripts / ai-toolkit sample prompts) as a catalog.

One prompt per line: ``prompt text --n negative --w 1024 --h 1024 --d seed --s steps --l cfg``.
Blank lines and lines starting with ``#`` are skipped. ``--d`` becomes the entry's base seed (our
seeds are still derived per sample by ``seeds.derive_seed``, so images stay reproducible).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from diffusion_assets.catalog.load import CatalogError, CatalogIssue

# kohya option → (catalog field, type)
OPTIONS = {
    "n": ("negative_prompt", str),
    "w": ("width", int),
    "h": ("height", int),
    "d": ("seed", int),
    "s": ("steps", int),
    "l": ("guidance", float),
}
_OPTION = re.compile(r"\s--([a-z]+)\s+")
HINT = "one prompt per line: `prompt text --n negative --w 1024 --h 1024 --d seed --s steps --l cfg`."


class KohyaLineError(ValueError):
    """A kohya prompt line that cannot become an entry; ``field`` is the option at fault, if any."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def parse_line(line: str) -> dict:
    """One kohya prompt line as a catalog entry dict (without ``id``)."""
    parts = _OPTION.split(" " + line.strip())
    entry: dict = {"prompt": parts[0].strip()}
    for flag, value in zip(parts[1::2], parts[2::2], strict=True):
        if flag not in OPTIONS:
            supported = ", ".join("--" + k for k in OPTIONS)
            raise KohyaLineError(f"unknown option (supported: {supported})", f"--{flag}")
        field, kind = OPTIONS[flag]
        try:
            entry[field] = kind(value.strip())
        except ValueError as exc:
            raise KohyaLineError(f"needs a {kind.__name__}, got {value.strip()!r}", f"--{flag}") from exc
    if not entry["prompt"]:
        raise KohyaLineError("empty prompt", "prompt")
    return entry


def import_kohya(path: Path, model: str) -> dict:
    """Convert a kohya prompt file into a catalog mapping (entries ``line-<n>``)."""
    entries, issues = [], []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            entries.append({"id": f"line-{number:03d}", **parse_line(line)})
        except KohyaLineError as exc:
            issues.append(CatalogIssue(str(path), f"line {number}", exc.field, str(exc), HINT))
    if issues:
        raise CatalogError(issues)
    return {
        "description": f"Imported from {Path(path).name} (kohya prompt format)",
        "defaults": {"model": model},
        "entries": entries,
    }


def dump_catalog(catalog: dict) -> str:
    return yaml.safe_dump(catalog, sort_keys=False, allow_unicode=True)
