"""Read and validate a prompt catalog before any model loads.

Every problem becomes one ``CatalogIssue`` naming the file, the entry and the field, with a hint;
``load_catalog`` raises a ``CatalogError`` listing all of them, so one edit can fix them all.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from diffusion_assets.catalog.schema import Catalog, Entry, GenerationParams
from diffusion_assets.models.presets import (
    PRESETS,
    Preset,
    is_local_spec,
    preset_for_folder,
    unknown_preset_message,
)
from diffusion_assets.yaml_input import InputError, InputIssue, read_yaml_mapping, shown

HINTS = {
    "steps": "steps is the number of denoising steps, a positive integer (e.g. 30).",
    "width": "use a multiple of 8 (16 for Flux), e.g. 512 or 1024.",
    "height": "use a multiple of 8 (16 for Flux), e.g. 512 or 1024.",
    "scheduler": "one of: default, euler, euler_a, dpmpp_2m, dpmpp_2m_karras, ddim, pndm, lms, heun, "
    "unipc (SD/SDXL) or flow_match_euler (Flux).",
    "model": "a preset (" + ", ".join(PRESETS) + ") or a local diffusers folder such as ./models/my-model.",
    "id": "ids are letters, digits, '_', '-', '.', unique within the catalog, and never renamed.",
    "prompt": "every {name} in a prompt needs a `variables: {name: [...]}` list.",
    "negative_prompt": "every {name} in a negative prompt needs a `variables: {name: [...]}` list.",
    "variables": "variables: {name: [value, ...]}; a name is letters, digits and '_' (not starting with a "
    "digit), used as {name} in prompts.",
    "guidance": "the classifier-free guidance scale, e.g. 7.5 for SD/SDXL (Flux-dev: 3.5; Flux-schnell: 0).",
    "true_cfg_scale": "Flux only: > 1 enables true CFG with the negative prompt (about 4), at twice the cost.",
    "refiner_switch": "the fraction of denoising the base does before the refiner, between 0 and 1 (e.g. 0.8).",
    "control_image": "a path relative to the catalog's folder, used only with an sdxl+controlnet-* preset.",
    "controlnet_scale": "controlnet_conditioning_scale, usually 0.3 to 1.0.",
    "lora": "lora: {path: ../data/adapters/<name>/<id>/pytorch_lora_weights.safetensors, scale: 0.8}.",
    "lora.path": "a .safetensors LoRA, relative to the catalog's folder.",
    "images_per_prompt": "a positive integer: samples per expanded prompt, each with its own seed.",
    "entries": "entries: a list of {id: ..., prompt: ...} mappings; see prompts/shapes_demo.yaml.",
}


CatalogIssue = InputIssue
"""One catalog problem: file, entry, field, message and hint."""


class CatalogError(InputError):
    """A catalog failed validation; ``issues`` lists every problem found."""

    what = "catalog"


@dataclass(frozen=True)
class LoadedCatalog:
    """A validated catalog and where it came from."""

    name: str
    path: Path
    sha256: str
    catalog: Catalog
    raw: bytes
    _presets: dict = field(default_factory=dict, repr=False, compare=False)
    warnings: list[CatalogIssue] = field(default_factory=list, compare=False)
    """What the catalog may do but should know: checks this machine could not make, prompts it allows to
    be cut (``allow_truncated_prompts``). ``validate`` prints them."""

    def preset_for(self, params: GenerationParams) -> Preset:
        """The entry's preset, resolved once per model spec (a folder's config is read once)."""
        spec = params.model or self.catalog.defaults.model
        if spec not in self._presets:
            self._presets[spec] = resolve_model(spec, self.path.parent)
        return self._presets[spec]


def resolve_model(spec: str | None, base_dir: Path) -> Preset:
    """Map a catalog's ``model`` string to a ``Preset`` (a named one or a local folder)."""
    if spec is None:
        raise ValueError("no model: set `defaults.model` or the entry's `model`")
    if is_local_spec(spec):
        return preset_for_folder((base_dir / Path(spec).expanduser()).resolve())
    if spec not in PRESETS:
        raise ValueError(unknown_preset_message(spec))
    return PRESETS[spec]


def _entry_label(raw: dict, index: int) -> str:
    entries = raw.get("entries") if isinstance(raw, dict) else None
    entry_id = None
    if isinstance(entries, list) and index < len(entries) and isinstance(entries[index], dict):
        entry_id = entries[index].get("id")
    return f"entry '{entry_id}' (entries[{index}])" if entry_id else f"entries[{index}]"


def _pydantic_issues(file: str, raw: dict, error: ValidationError) -> list[CatalogIssue]:
    issues = []
    for err in error.errors():
        loc = list(err["loc"])
        entry = None
        if loc[:1] == ["entries"] and len(loc) > 1 and isinstance(loc[1], int):
            entry = _entry_label(raw, loc[1])
            loc = loc[2:]
        elif loc[:1] == ["defaults"]:
            entry, loc = "defaults", loc[1:]
        field = ".".join(str(p) for p in loc) or None
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field (typo?)"
        elif "input" in err and err["type"] != "missing":
            message = f"{message} (got {shown(err['input'])})"
        top = field.split(".")[0] if field else None
        issues.append(CatalogIssue(file, entry, field, message, HINTS.get(top or "")))
    return issues


def load_catalog(path: str | Path) -> LoadedCatalog:
    """Parse and fully validate the catalog at ``path``.

    Raises:
        CatalogError: listing every problem, each with file, entry, field and a hint.
    """
    from diffusion_assets.catalog.checks import semantic_issues  # noqa: PLC0415 (import cycle)
    from diffusion_assets.files import sha256_bytes

    path = Path(path)
    file = str(path)

    def fail(message: str, hint: str | None) -> CatalogError:
        return CatalogError([CatalogIssue(file, None, None, message, hint)])

    data, raw = read_yaml_mapping(
        path, fail, "a catalog is a mapping with at least `entries:`; see prompts/shapes_demo.yaml."
    )
    try:
        catalog = Catalog.model_validate(raw)
    except ValidationError as exc:
        raise CatalogError(_pydantic_issues(file, raw, exc)) from exc
    loaded = LoadedCatalog(name=path.stem, path=path, sha256=sha256_bytes(data), catalog=catalog, raw=data)
    found = semantic_issues(loaded)
    if found.errors:
        raise CatalogError(found.errors)
    loaded.warnings.extend(found.warnings)
    return loaded


def template_problems(text: str) -> list[str]:
    """Why ``text`` is not a template of bare ``{name}`` fields (empty when it is one).

    ``str.format`` would also accept ``{}``, ``{0}``, ``{a.b}``, ``{a[0]}``, ``{a!r}`` and ``{a:>9}``,
    and fail only while expanding; a catalog allows names alone.
    """
    try:
        fields = list(string.Formatter().parse(text))
    except ValueError as exc:  # an unmatched brace
        return [f"{exc} (write {{{{ and }}}} for literal braces)"]
    problems = []
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            problems.append(f"placeholder {shown} is not a plain {{name}} of a variable")
    return problems


def placeholders(text: str) -> list[str]:
    """The ``{name}`` fields of a valid template (see ``template_problems``), in order."""
    return [name for _, name, _, _ in string.Formatter().parse(text) if name]


def entry_images(catalog: Catalog, entry: Entry) -> int:
    """How many images an entry makes per partition: the product of the lengths of the variables its
    templates use, times ``images_per_prompt`` (computed, never expanded)."""
    per_prompt = entry.images_per_prompt or catalog.defaults.images_per_prompt or 1
    return math.prod(len(values) for values in entry_variables(catalog, entry).values()) * per_prompt


def catalog_images(catalog: Catalog) -> int:
    """Images per partition of a valid catalog (what ``max_images`` caps)."""
    return sum(entry_images(catalog, entry) for entry in catalog.entries)


def entry_variables(catalog: Catalog, entry: Entry) -> dict[str, list[str]]:
    """The variables an entry's templates use: the entry's own override the catalog's."""
    merged = {**catalog.variables, **(entry.variables or {})}
    default = catalog.defaults.negative_prompt or ""
    negative = default if entry.negative_prompt is None else entry.negative_prompt  # "" clears it
    used = placeholders(entry.prompt) + placeholders(negative)
    return {name: merged[name] for name in dict.fromkeys(used) if name in merged}
