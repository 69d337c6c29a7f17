"""Read and validate a LoRA dataset spec before any image is read.

Every problem becomes one ``SpecIssue`` naming the file, the field path and a hint; ``load_spec``
raises a ``DatasetSpecError`` listing all of them, so one edit can fix them all.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path

from pydantic import ValidationError

from diffusion_assets import paths
from diffusion_assets.catalog.load import placeholders, template_problems
from diffusion_assets.datasets.spec import NAME_PATTERN, TEMPLATE_FIELDS, DatasetSpec, Training
from diffusion_assets.files import sha256_bytes
from diffusion_assets.models.presets import PRESETS
from diffusion_assets.training.config import LoraTrainConfig
from diffusion_assets.yaml_input import InputError, InputIssue, read_yaml_mapping, shown

HINTS = {
    "sources": "a list of `{catalog: <name in prompts/>, dates: all}` or `dates: [2026-11-28, ...]`.",
    "filters": "filters: {dedup_max_distance: 4 or null, min_caption_score: null, entries: [glob, ...]}.",
    "captions": "captions: {source: captioner | prompt, template: '{caption}'}; template fields: "
    + ", ".join("{" + f + "}" for f in TEMPLATE_FIELDS)
    + ".",
    "trigger": "trigger: {word: sks, placement: prefix | suffix | none, phrase: 'in sks style' (optional)}.",
    "split": "split: {validation_fraction: 0 to 0.5, seed: a non-negative integer}.",
    "resolution": "a multiple of 8, e.g. 32 for the shapes world or 512/1024 for SD/SDXL.",
    "evaluation": "evaluation: {min_style_gain: 0.2, min_clip_t_gain: -0.02}.",
    "training": "see diffusion_assets/datasets/spec.py `Training` for every field and its default.",
    "training.base_model": "a preset (" + ", ".join(PRESETS) + ") or a local diffusers folder such as "
    "./models/my-model.",
}


OPTION_FIELDS = tuple(
    n for n in LoraTrainConfig.model_fields if n not in Training.model_fields and n != "resolution"
)
"""Trainer fields only ``training.options`` can set; the others have a typed place in the spec."""

SpecIssue = InputIssue
"""One dataset-spec problem: file, field path (no entry), message and hint."""


class DatasetSpecError(InputError):
    """A dataset spec failed validation; ``issues`` lists every problem found."""

    what = "dataset spec"


@dataclass(frozen=True)
class LoadedSpec:
    """A validated dataset spec and where it came from; the file stem is the dataset name."""

    name: str
    path: Path
    sha256: str
    spec: DatasetSpec
    raw: bytes


def _hint(field: str | None) -> str | None:
    if not field:
        return None
    parts = field.split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(p for p in parts[:n] if not p.isdigit())
        if key in HINTS:
            return HINTS[key]
    return None


def _pydantic_issues(file: str, error: ValidationError) -> list[SpecIssue]:
    issues = []
    for err in error.errors():
        # a union (`dates: all | [...]`) reports one error per branch; name the field once
        loc = [
            str(p) for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("literal")))
        ]
        field = ".".join(loc) or None
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field (typo?)"
        elif "input" in err and err["type"] not in ("missing", "value_error"):
            message = f"{message} (got {shown(err['input'])})"
        hint = _hint(field)
        if err["type"] == "extra_forbidden" and len(loc) == 1:
            hint = "top-level fields: " + ", ".join(DatasetSpec.model_fields) + "."
        issue = SpecIssue(file, None, field, message, hint)
        if issue not in issues:
            issues.append(issue)
    return issues


def option_issues(training: Training, resolution: int) -> list[tuple[str, str, str]]:
    """``(field, message, hint)`` for each ``training.options`` key the trainer's config would refuse, or
    that overrides a field the spec has a typed place for."""
    problems, known = [], {}
    for key, value in training.options.items():
        field = f"training.options.{key}"
        if key == "resolution":
            message = "overrides the top-level `resolution`, which also sizes the dataset's images"
            problems.append((field, message, f"set the top-level `resolution: {value}` instead."))
        elif key in Training.model_fields and key != "options":
            problems.append((field, f"overrides training.{key}", f"set `training.{key}: {value}` instead."))
        elif key not in LoraTrainConfig.model_fields:
            close = get_close_matches(key, OPTION_FIELDS, n=1)
            guess = f"did you mean {close[0]}? " if close else ""
            hint = f"{guess}options may set: {', '.join(OPTION_FIELDS)}."
            problems.append((field, "unknown trainer field (typo?)", hint))
        else:
            known[key] = value
    try:
        LoraTrainConfig(**training.model_copy(update={"options": known}).trainer_fields(resolution))
    except ValidationError as exc:
        for err in exc.errors():
            key = str(err["loc"][0]) if err["loc"] else None
            if key in known:  # typed fields were checked by the spec's own schema
                hint = f"{key}: {LoraTrainConfig.model_fields[key].description}"
                problems.append((f"training.options.{key}", f"{err['msg']} (got {known[key]!r})", hint))
    return problems


def semantic_issues(file: str, name: str, spec: DatasetSpec) -> list[SpecIssue]:
    """Every problem the schema cannot see, one issue each."""
    issues: list[SpecIssue] = []

    def issue(field: str | None, message: str, hint: str | None = None) -> None:
        issues.append(SpecIssue(file, None, field, message, hint or _hint(field)))

    if not re.match(NAME_PATTERN, name):
        issue(None, f"the file name '{name}' cannot name a dataset", "rename it to letters, digits, _ - .")
    for catalog, n in Counter(s.catalog for s in spec.sources).items():
        if n > 1:
            issue("sources", f"catalog '{catalog}' is listed {n} times; merge its dates into one source")
    if spec.resolution % 8:
        issue("resolution", f"{spec.resolution} is not a multiple of 8 (the VAE downsamples by 8)")
    trigger = spec.trigger
    if trigger.placement != "none" and not trigger.word:
        issue("trigger.word", f"placement '{trigger.placement}' needs a trigger word")
    if trigger.word is not None and (not trigger.word.strip() or re.search(r"\s", trigger.word)):
        issue("trigger.word", f"{trigger.word!r} is not one word", "use a single rare token such as `sks`.")
    if trigger.phrase is not None and not (trigger.word and has_word(trigger.phrase, trigger.word)):
        issue(
            "trigger.phrase", f"phrase {trigger.phrase!r} does not contain the trigger word {trigger.word!r}"
        )
    template = spec.captions.template
    if template is not None:
        # str.format accepts {a!r}, {a:>9}, {0} and fails only while expanding, after every image was read
        problems = template_problems(template)
        for problem in problems:
            issue("captions.template", problem)
        try:
            used = [name for name in placeholders(template) if name.isidentifier()]
        except ValueError:  # an unmatched brace, reported above
            used = None
        if used is not None:
            unknown = sorted(set(used) - set(TEMPLATE_FIELDS))
            if unknown:
                issue("captions.template", f"unknown field(s) {', '.join('{' + u + '}' for u in unknown)}")
            if template and not {"caption", "prompt"} & set(used):
                issue(
                    "captions.template",
                    "uses neither {caption} nor {prompt}, so every caption would be the same",
                )
            if "trigger" in used and not trigger.word:
                issue("captions.template", "uses {trigger} but trigger.word is not set")
    for field, message, hint in option_issues(spec.training, spec.resolution):
        issue(field, message, hint)
    if spec.training.validation_every and not spec.training.validation_prompts:
        issue("training.validation_prompts", "validation_every > 0 needs at least one validation prompt")
    if spec.filters.min_caption_score is not None and spec.captions.source == "prompt":
        issue(
            "filters.min_caption_score",
            "prompts have no caption score",
            "set captions.source: captioner (with a scoring captioner), or min_caption_score: null.",
        )
    return issues


def has_word(text: str, word: str) -> bool:
    """Whether ``word`` occurs in ``text`` as a whole word (``sks`` is not in ``sksx``)."""
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text) is not None


def load_spec(path: str | Path, *, check_sources: bool | None = None) -> LoadedSpec:
    """Parse and fully validate the dataset spec at ``path``.

    ``check_sources`` also checks the spec against the project's catalogs (``source_issues``): every
    source names a catalog that exists, every ``filters.entries`` glob matches one of its entry ids, and
    no caption would drop the trigger. ``None`` (the default) checks them for a spec in the project's
    ``lora_datasets/`` folder (what the sensor watches and ``validate`` reads) and not for a spec
    elsewhere (a test's scratch folder, with no catalogs beside it).

    Raises:
        DatasetSpecError: listing every problem, each with file, field path and a hint.
    """
    path = Path(path)
    file = str(path)

    def fail(message: str, hint: str | None) -> DatasetSpecError:
        return DatasetSpecError([SpecIssue(file, None, None, message, hint)])

    data, raw = read_yaml_mapping(
        path, fail, "a spec is a mapping with `sources:`, `captions:` and `resolution:`; see lora_datasets/."
    )
    try:
        spec = DatasetSpec.model_validate(raw)
    except ValidationError as exc:
        raise DatasetSpecError(_pydantic_issues(file, exc)) from exc
    issues = semantic_issues(file, path.stem, spec)
    if check_sources is None:
        check_sources = _in_project(path)
    if not issues and check_sources:
        from diffusion_assets.datasets.sources import source_issues  # noqa: PLC0415 (it imports this module)

        issues = source_issues(file, spec, paths.prompts_dir(), paths.data_root())
    if issues:
        raise DatasetSpecError(issues)
    return LoadedSpec(name=path.stem, path=path, sha256=sha256_bytes(data), spec=spec, raw=data)


def _in_project(path: Path) -> bool:
    try:
        return path.resolve().parent == paths.dataset_specs_dir().resolve()
    except OSError:
        return False
