"""Import kohya-style prompt files (sd-scripts / ai-toolkit sample prompts) as a catalog.

One prompt per line: ``prompt text --n negative --w 1024 --h 1024 --d seed --s steps --l cfg``. The file
is read the way sd-scripts reads it (``load_prompts`` and ``line_to_prompt_dict`` in
``library/train_util.py`` of kohya-ss/sd-scripts, commit 48d368fa):

1. the file is UTF-8, read line by line with universal newlines (``\\n``, ``\\r\\n``, ``\\r``) and each line
   stripped; empty lines are skipped, and so are lines whose *first* character is ``#`` (an indented
   ``#`` starts a prompt);
2. a line is split at every ``" --"`` (space, two dashes); the first part is the prompt, each other part
   an option;
3. an option is matched at its start, case-insensitively (``--W 32`` is ``--w 32``): ``w``/``h``/``d``/
   ``s`` take digits, ``l``/``g`` take digits and dots, ``n`` (negative prompt) takes the rest of the part,
   ``ss`` a sampler name; a later option overrides an earlier one.

Where sd-scripts would silently drop or change something, the import is an error naming the line and
the option instead: an unknown option or one the catalog cannot represent (``--cn``, ``--ctr``,
``--rcfg``, ``--fs``), text after a number (``--w 512px``: sd-scripts reads 512), a value it cannot parse
(it logs and ignores it), a sampler name it does not know (it falls back to DDIM), and ``--g`` for a
model that has no guidance embedding (sd-scripts reads it only for Flux). Two departures, both to read
what a person meant: a UTF-8 byte-order mark at the start of the file is dropped (sd-scripts opens the
file as ``utf-8``, so the mark would stay glued to the first prompt), and the option loop starts after
the prompt (sd-scripts also matches the prompt itself, so a prompt beginning ``"n ..."`` would set the
negative prompt). ``--d`` becomes the entry's base seed (seeds are still derived per sample by
``seeds.derive_seed``), ``--s`` the steps; for Flux ``--l`` is ``true_cfg_scale`` and ``--g`` the
guidance, as in sd-scripts' ``flux_train_utils.sample_image_inference``.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from diffusion_assets.catalog.load import CatalogError, CatalogIssue
from diffusion_assets.yaml_input import MAX_FILE_BYTES, InputTooLarge, read_bounded

_INT = r"(\d+)"
_FLOAT = r"([\d.]+)"
_REST = r"(.+)"
# sd-scripts' option patterns, in its order (``ss`` after ``s``: "ss x" does not match "s (\d+)")
_PATTERNS = [("w", _INT), ("h", _INT), ("d", _INT), ("s", _INT), ("l", _FLOAT), ("g", _FLOAT), ("n", _REST)]
_PATTERNS += [("ss", _REST), ("cn", _REST), ("ctr", _REST), ("rcfg", _REST), ("fs", _REST)]
_UNSUPPORTED = {
    "cn": "a ControlNet image: set control_image (relative to the catalog) on the entry instead",
    "ctr": "cfg_trunc_ratio (Lumina) has no catalog field",
    "rcfg": "renorm_cfg (Lumina) has no catalog field",
    "fs": "flow_shift has no catalog field",
}
SAMPLERS = {
    "ddim": "ddim",
    "pndm": "pndm",
    "lms": "lms",
    "k_lms": "lms",
    "euler": "euler",
    "k_euler": "euler",
    "euler_a": "euler_a",
    "k_euler_a": "euler_a",
    "heun": "heun",
    "dpmsolver++": "dpmpp_2m",
}
"""sd-scripts ``--ss`` names (``get_my_scheduler``) → catalog schedulers. ``dpmsolver``, ``dpmsingle``,
``dpm_2``, ``dpm_2_a`` (and their ``k_`` forms) have no catalog scheduler."""

HINT = "one prompt per line: `prompt text --n negative --w 1024 --h 1024 --d seed --s steps --l cfg`."


class KohyaLineError(ValueError):
    """A kohya prompt line that cannot become an entry; ``field`` is the option at fault, if any."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def _option(part: str) -> tuple[str, str | None, str]:
    """``(name, value, rest)`` of one option part, matched as sd-scripts matches it (at the start,
    ignoring case); ``rest`` is what sd-scripts would silently drop after the value."""
    for name, value in _PATTERNS:
        match = re.match(rf"{re.escape(name)} {value}", part, re.IGNORECASE)
        if match:
            return name, match.group(1), part[match.end() :]
    name = part.split(" ", 1)[0].lower()
    return name, None, ""


def parse_line(line: str, family: str = "sd") -> dict:
    """One kohya prompt line (already stripped) as a catalog entry dict (without ``id``).

    ``family`` is the catalog model's (``sd``, ``sdxl``, ``flux``, ``render``): it decides what
    ``--l`` and ``--g`` mean.
    """
    prompt, *parts = line.split(" --")
    if prompt.startswith("--"):
        raise KohyaLineError(
            "the line starts with an option, so sd-scripts would read it all as the prompt", "prompt"
        )
    hidden = re.search(r"[^\S ]--([A-Za-z]+)\s", " " + prompt)
    if hidden:
        raise KohyaLineError(
            f"--{hidden.group(1)} follows a tab or other space that is not ' ', so sd-scripts (which splits at "
            "' --') would read it as prompt text; put a plain space before it",
            f"--{hidden.group(1).lower()}",
        )
    entry: dict = {"prompt": prompt.strip()}
    flux = family == "flux"
    for part in parts:
        if not part.strip():
            continue  # "a cat --" : nothing to read
        name, value, rest = _option(part)
        flag = f"--{name}"
        if value is None:
            known = ", ".join(f"--{n}" for n, _ in _PATTERNS if n not in _UNSUPPORTED)
            if name in {n for n, _ in _PATTERNS}:
                raise KohyaLineError(f"needs a value, got {part!r} (sd-scripts would ignore it)", flag)
            raise KohyaLineError(f"unknown option (sd-scripts ignores it silently; supported: {known})", flag)
        if name in _UNSUPPORTED:
            raise KohyaLineError(f"not imported: {_UNSUPPORTED[name]}", flag)
        if rest.strip():
            raise KohyaLineError(
                f"text after the value: {part!r} (sd-scripts reads {value!r} and drops {rest.strip()!r})",
                flag,
            )
        if name == "n":
            entry["negative_prompt"] = value.strip()
        elif name == "ss":
            if value.strip() not in SAMPLERS:
                close = [k for k in SAMPLERS if k == value.strip().lower()]
                guess = f"; did you mean {close[0]}?" if close else ""
                raise KohyaLineError(
                    f"sampler {value.strip()!r} is not one sd-scripts knows (it would use DDIM instead){guess} "
                    f"supported: {', '.join(SAMPLERS)}",
                    flag,
                )
            entry["scheduler"] = SAMPLERS[value.strip()]
        elif name in ("l", "g"):
            try:
                number = float(value)
            except ValueError:
                raise KohyaLineError(
                    f"needs a number, got {value!r} (sd-scripts would ignore it)", flag
                ) from None
            if name == "g" and not flux:
                raise KohyaLineError(
                    "--g is Flux's guidance embedding; sd-scripts ignores it for this model", flag
                )
            entry[{"l": "true_cfg_scale" if flux else "guidance", "g": "guidance"}[name]] = number
        else:
            entry[{"w": "width", "h": "height", "d": "seed", "s": "steps"}[name]] = int(value)
    if not entry["prompt"]:
        raise KohyaLineError("empty prompt", "prompt")
    return entry


def prompt_lines(path: Path) -> list[tuple[int, str]]:
    """``(line number, stripped line)`` of every prompt line, as sd-scripts' ``load_prompts`` keeps them.

    Raises:
        CatalogError: the file cannot be read, is over ``MAX_FILE_BYTES`` or is not UTF-8.
    """
    file = str(path)
    try:
        data = read_bounded(Path(path), MAX_FILE_BYTES)
    except (OSError, InputTooLarge) as exc:
        message = f"cannot read: {exc.strerror}" if isinstance(exc, OSError) else f"refused: {exc}"
        raise CatalogError([CatalogIssue(file, None, None, message, None)]) from exc
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        issue = CatalogIssue(
            file, f"line {line}", None, f"not UTF-8 ({exc.reason} at byte {exc.start})", None
        )
        raise CatalogError([issue]) from exc
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [(n, line.strip()) for n, line in enumerate(lines, start=1) if line.strip() and line[0] != "#"]


def import_kohya(path: Path, model: str) -> dict:
    """Convert a kohya prompt file into a catalog mapping (entries ``line-<n>``).

    Raises:
        CatalogError: naming every line that cannot be imported, and the option at fault.
    """
    from diffusion_assets.catalog.load import resolve_model  # noqa: PLC0415

    try:
        family = resolve_model(model, Path(path).parent).family
    except ValueError as exc:
        raise CatalogError([CatalogIssue(str(path), None, "--model", str(exc), None)]) from exc
    entries, issues = [], []
    for number, line in prompt_lines(path):
        try:
            entries.append({"id": f"line-{number:03d}", **parse_line(line, family)})
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
