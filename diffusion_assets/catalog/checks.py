"""Semantic catalog checks that need more than the schema: presets, sizes, files, templates, the image cap,
parameters a pipeline would ignore, prompt lengths, and LoRA files.

Nothing here imports torch, diffusers or transformers: model folders are read as JSON and safetensors
headers (``model_files``). A check that needs a folder this machine does not have becomes a warning
that says where it looked.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from diffusion_assets.catalog import refiner
from diffusion_assets.catalog.expand import expand_entry, merged_params
from diffusion_assets.catalog.load import (
    HINTS,
    CatalogIssue,
    LoadedCatalog,
    _entry_label,
    entry_images,
    entry_variables,
    placeholders,
    template_problems,
)
from diffusion_assets.catalog.lora_file import lora_problems
from diffusion_assets.catalog.model_files import model_folder, read_json
from diffusion_assets.catalog.prompt_tokens import length_problems, text_encoders
from diffusion_assets.catalog.schema import MAX_IMAGES_LIMIT
from diffusion_assets.generation.infotext import NEGATIVE_MARKER
from diffusion_assets.models.presets import Preset


@dataclass
class Findings:
    """Errors refuse the catalog; warnings are said (``validate`` prints them) and it still loads."""

    errors: list[CatalogIssue] = field(default_factory=list)
    warnings: list[CatalogIssue] = field(default_factory=list)


def semantic_issues(loaded: LoadedCatalog) -> Findings:
    """Every problem the schema cannot see, one issue each.

    The image cap is checked first, from list lengths alone: a catalog over it gets only that error (what
    it asks for would take hours to check and days to generate), in constant time per entry.
    """
    file, catalog = str(loaded.path), loaded.catalog
    raw = {"entries": [{"id": e.id} for e in catalog.entries]}
    found = Findings()
    found.errors += _cap_issues(file, catalog, raw)
    if found.errors:
        return found
    found.errors.extend(
        CatalogIssue(
            file, None, f"variables.{name}", "not a name a {placeholder} can use", HINTS["variables"]
        )
        for name in catalog.variables
        if not name.isidentifier()
    )
    counts = Counter(e.id for e in catalog.entries)
    texts: dict[int, tuple[Preset, list[tuple[str, str, str]]]] = {}
    for index, entry in enumerate(catalog.entries):
        label = _entry_label(raw, index)

        def issue(field: str, message: str, hint: str | None = None, _label: str = label) -> None:
            found.errors.append(CatalogIssue(file, _label, field, message, hint or HINTS.get(field)))

        if counts[entry.id] > 1:
            issue("id", f"duplicate id '{entry.id}' ({counts[entry.id]} entries use it)")
        checked = _check_entry(loaded, entry, issue, found.warnings, label)
        if checked is not None:
            texts[index] = checked
    _check_prompt_lengths(file, catalog.allow_truncated_prompts, raw, texts, found)
    return found


def _cap_issues(file: str, catalog, raw: dict) -> list[CatalogIssue]:
    """The ``max_images`` cap, from the product of the used variables' lengths × ``images_per_prompt``."""
    sizes = {}
    default_negative = catalog.defaults.negative_prompt or ""
    for index, entry in enumerate(catalog.entries):
        negative = default_negative if entry.negative_prompt is None else entry.negative_prompt
        if template_problems(entry.prompt) or template_problems(negative):
            continue  # reported with the entry's other problems
        sizes[index] = entry_images(catalog, entry)
    over = [i for i, n in sizes.items() if n > catalog.max_images]
    issues = []
    for index in over:
        entry = catalog.entries[index]
        variables = entry_variables(catalog, entry)
        per_prompt = entry.images_per_prompt or catalog.defaults.images_per_prompt or 1
        shape = " × ".join(f"{len(v)} {name}" for name, v in variables.items()) or "1 prompt"
        issues.append(
            CatalogIssue(
                file,
                _entry_label(raw, index),
                "variables" if variables else "images_per_prompt",
                f"expands to {sizes[index]:,} images ({shape} × images_per_prompt {per_prompt}), over the cap "
                f"of {catalog.max_images:,} images per partition",
                _CAP_HINT,
            )
        )
    total = sum(sizes.values())
    if not over and total > catalog.max_images:
        largest = sorted(sizes, key=sizes.get, reverse=True)[:3]
        shown = ", ".join(f"{catalog.entries[i].id} {sizes[i]:,}" for i in largest)
        issues.append(
            CatalogIssue(
                file,
                None,
                "max_images",
                f"the catalog makes {total:,} images per partition ({len(sizes):,} entries; largest: {shown}), over "
                f"the cap of {catalog.max_images:,}",
                _CAP_HINT,
            )
        )
    return issues


def _check_entry(loaded: LoadedCatalog, entry, issue, warnings: list, label: str):
    """One entry's checks; ``(preset, [(expanded id, prompt, negative prompt)])`` when its templates
    expand (for the prompt-length check), else None."""
    catalog, base_dir, file = loaded.catalog, loaded.path.parent, str(loaded.path)
    params = merged_params(catalog, entry)
    try:
        preset = loaded.preset_for(params)
    except ValueError as exc:
        issue("model", str(exc))
        return None
    problems = 0

    def counted(field: str, message: str, hint: str | None = None) -> None:
        nonlocal problems
        problems += 1
        issue(field, message, hint)

    _check_params(params, preset, base_dir, issue)
    if params.lora and preset.family != "render" and (base_dir / params.lora.path).is_file():
        errors, notes = lora_problems(base_dir / params.lora.path, preset)
        for message, hint in errors:
            issue("lora.path", message, hint)
        warnings += [CatalogIssue(file, label, "lora.path", note) for note in notes]
    merged_vars = {**catalog.variables, **(entry.variables or {})}
    for name in entry.variables or {}:
        if not name.isidentifier():
            counted("variables", f"variable name '{name}' cannot be a {{placeholder}}")
    for text_field, text in (("prompt", entry.prompt), ("negative_prompt", params.negative_prompt or "")):
        template = template_problems(text)
        for problem in template:
            counted(text_field, problem)
        for name in [] if template else placeholders(text):
            if not merged_vars.get(name):
                counted(text_field, f"placeholder {{{name}}} has no values")
    if problems:
        return None  # expanding needs sound templates; other entries are still checked
    expanded = expand_entry(catalog, entry)  # within the cap, checked first
    for eid, n in Counter(eid for eid, _ in expanded).items():
        if n > 1:
            issue("variables", f"expanded id '{eid}' occurs {n} times: a variable lists a value twice")
    negative = params.negative_prompt or ""
    texts = [(eid, entry.prompt.format(**combo), negative.format(**combo)) for eid, combo in expanded]
    for text_field, at in (("prompt", 1), ("negative_prompt", 2)):
        marked = [t[0] for t in texts if NEGATIVE_MARKER in t[at]]
        if marked:
            issue(
                text_field,
                f"contains '{NEGATIVE_MARKER}' ({', '.join(marked[:3])}{', …' if len(marked) > 3 else ''}): A1111's "
                "infotext has no escape for it, and A1111 (a line that starts with it) and sd-parsers (anywhere) "
                "would read the rest as the negative prompt",
                "reword it (e.g. 'negative prompt -'), or put the text in negative_prompt",
            )
    return preset, texts


_CAP_HINT = (
    "use fewer variable values or a smaller images_per_prompt, split the catalog, or raise the cap with "
    f"`max_images: <n>` at the top of the catalog (at most {MAX_IMAGES_LIMIT:,})."
)


def _check_params(params, preset: Preset, base_dir: Path, issue) -> None:
    for dim in ("width", "height"):
        value = getattr(params, dim) or getattr(preset, dim)
        if value % preset.size_multiple:
            issue(dim, f"{value} is not divisible by {preset.size_multiple} (required by {preset.name})")
    sched = params.scheduler
    if preset.family == "flux" and sched not in (None, "default", "flow_match_euler"):
        issue("scheduler", f"'{sched}' does not work with flow-matching model {preset.name}")
    if preset.family != "flux" and sched == "flow_match_euler":
        issue("scheduler", f"'flow_match_euler' is for Flux models, not {preset.name}")
    if preset.family == "render":
        # the renderer draws the prompt exactly: it has no sampler and no denoising steps
        if sched not in (None, "default"):
            issue(
                "scheduler",
                f"{preset.name} renders without a sampler, so '{sched}' would be ignored",
                "remove it",
            )
        if params.lora:
            issue("lora", f"{preset.name} has no weights for an adapter to change; remove lora")
        if params.steps is not None and params.steps != preset.steps:
            issue(
                "steps",
                f"{preset.name} renders in one pass, so steps {params.steps} would be ignored",
                "remove it",
            )
    if preset.guidance_kind == "none" and params.guidance not in (None, 0):
        issue("guidance", f"{preset.name} is guidance-distilled and ignores guidance; set 0 or remove it")
    guidance = preset.guidance if params.guidance is None else params.guidance
    true_cfg = params.true_cfg_scale
    if preset.guidance_kind == "cfg" and params.negative_prompt and guidance <= 1:
        # diffusers: do_classifier_free_guidance = guidance_scale > 1 (pipeline_stable_diffusion*.py)
        issue(
            "negative_prompt",
            f"guidance {guidance:g} turns classifier-free guidance off (diffusers runs it only above 1), so the "
            "negative prompt would be ignored",
            "raise guidance above 1 (e.g. 5), or remove the negative prompt (`negative_prompt: ''` clears a default).",
        )
    if preset.guidance_kind != "cfg" and params.negative_prompt and not (true_cfg and true_cfg > 1):
        why = (
            f"true_cfg_scale {true_cfg:g} runs no true CFG (diffusers' FluxPipeline runs it only above 1)"
            if true_cfg
            else f"{preset.name} has no classifier-free guidance"
        )
        issue(
            "negative_prompt",
            f"{why}, so a negative prompt would be ignored",
            "remove it"
            + (
                ", or set `true_cfg_scale: 2` or more to run real CFG (twice the cost)"
                if preset.family == "flux"
                else ""
            ),
        )
    elif preset.family == "flux" and true_cfg is not None and true_cfg <= 1:
        issue("true_cfg_scale", f"true_cfg_scale {true_cfg:g} has no effect (true CFG runs only above 1)")
    if preset.family != "flux" and true_cfg is not None:
        issue("true_cfg_scale", "only Flux models take true_cfg_scale; use `guidance` for CFG")
    if params.refiner_switch is not None and not preset.refiner_id:
        issue("refiner_switch", f"{preset.name} has no refiner; use the sdxl-base+refiner preset")
    if preset.refiner_id:
        _check_refiner_split(params, preset, issue)
    if preset.controlnet_id and not params.control_image:
        issue("control_image", f"{preset.name} needs a control_image (a path relative to the catalog)")
    if params.control_image and not preset.controlnet_id:
        issue("control_image", f"{preset.name} is not a ControlNet preset; remove control_image")
    if params.controlnet_scale is not None and not preset.controlnet_id:
        issue(
            "controlnet_scale",
            f"{preset.name} is not a ControlNet preset, so controlnet_scale would be ignored",
        )
    if params.control_image:
        problem = _image_problem(base_dir / params.control_image)
        if problem:
            issue("control_image", problem)
    if params.lora and not (base_dir / params.lora.path).is_file():
        issue("lora.path", f"file not found: {(base_dir / params.lora.path)}")


def _image_problem(path: Path) -> str | None:
    """Why a control image cannot be used: missing, not an image, or so large that decoding it would
    exhaust memory (Pillow's decompression-bomb limit); only the header is read."""
    if not path.is_file():
        return f"file not found: {path}"
    from PIL import Image  # noqa: PLC0415 - only when a catalog has a control image

    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, Image.DecompressionBombError) as exc:
        return f"{path} cannot be read as an image: {exc}"
    if width * height > (Image.MAX_IMAGE_PIXELS or 89_478_485):
        return f"{path} is {width}×{height} pixels, more than Pillow decodes safely"
    return None


def _check_refiner_split(params, preset: Preset, issue) -> None:
    steps = params.steps or preset.steps
    switch = params.refiner_switch or preset.refiner_switch
    scheduler = params.scheduler or "default"
    configs = []
    for role in ("base", "refiner"):
        folder = model_folder(preset, role).folder
        own = read_json(folder / "scheduler" / "scheduler_config.json") if folder is not None else None
        configs.append(own or refiner.SDXL_SCHEDULER)
    problem = refiner.split_problem(steps, switch, scheduler, *configs)
    if problem is None:
        return
    enough = next(
        (n for n in range(steps + 1, 1001) if not refiner.split_problem(n, switch, scheduler, *configs)), None
    )
    issue(
        "refiner_switch" if params.refiner_switch is not None else "steps",
        problem,
        f"each of base and refiner needs at least one step: raise steps (e.g. `steps: {enough}`)"
        if enough
        else "move refiner_switch towards 0.5",
    )


def _check_prompt_lengths(file: str, allow: bool, raw: dict, texts: dict, found: Findings) -> None:
    """Each entry's longest prompt and negative prompt against every text encoder of its preset: an error,
    or with ``allow_truncated_prompts`` a warning; one note per encoder that could only be estimated."""
    encoders: dict[str, list] = {}
    for index, (preset, pairs) in texts.items():
        if preset.name not in encoders:
            encoders[preset.name] = text_encoders(preset)
            found.warnings += [
                CatalogIssue(file, None, None, e.note) for e in encoders[preset.name] if not e.exact
            ]
        for text_field, message in length_problems(encoders[preset.name], pairs):
            hint = (
                "shorten it, or set `allow_truncated_prompts: true` to generate it cut (the manifest records "
                "the token counts)."
            )
            issue = CatalogIssue(file, _entry_label(raw, index), text_field, message, None if allow else hint)
            (found.warnings if allow else found.errors).append(issue)
