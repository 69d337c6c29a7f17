"""Semantic catalog checks that need more than the schema: presets, sizes, files, templates."""

from __future__ import annotations

from collections import Counter

from diffusion_assets.catalog.expand import expand_entry, merged_params
from diffusion_assets.catalog.load import (
    HINTS,
    CatalogIssue,
    LoadedCatalog,
    _entry_label,
    placeholders,
    template_problems,
)
from diffusion_assets.models.presets import Preset

_SD_ONLY = {"euler", "euler_a", "dpmpp_2m", "dpmpp_2m_karras", "ddim", "pndm", "lms", "heun", "unipc"}


def semantic_issues(loaded: LoadedCatalog) -> list[CatalogIssue]:
    """Every problem the schema cannot see, one issue each."""
    file, catalog = str(loaded.path), loaded.catalog
    base_dir = loaded.path.parent
    raw = {"entries": [{"id": e.id} for e in catalog.entries]}
    issues: list[CatalogIssue] = [
        CatalogIssue(
            file, None, f"variables.{name}", "not a name a {placeholder} can use", HINTS["variables"]
        )
        for name in catalog.variables
        if not name.isidentifier()
    ]
    counts = Counter(e.id for e in catalog.entries)
    for index, entry in enumerate(catalog.entries):
        label = _entry_label(raw, index)

        def issue(field: str, message: str, hint: str | None = None, _label: str = label) -> None:
            issues.append(CatalogIssue(file, _label, field, message, hint or HINTS.get(field)))

        if counts[entry.id] > 1:
            issue("id", f"duplicate id '{entry.id}' ({counts[entry.id]} entries use it)")
        params = merged_params(catalog, entry)
        try:
            preset = loaded.preset_for(params)
        except ValueError as exc:
            issue("model", str(exc))
            continue
        _check_params(params, preset, base_dir, issue)
        merged_vars = {**catalog.variables, **(entry.variables or {})}
        before = len(issues)
        for name in entry.variables or {}:
            if not name.isidentifier():
                issue("variables", f"variable name '{name}' cannot be a {{placeholder}}")
        for text_field, text in (("prompt", entry.prompt), ("negative_prompt", params.negative_prompt or "")):
            problems = template_problems(text)
            for problem in problems:
                issue(text_field, problem)
            for name in [] if problems else placeholders(text):
                if not merged_vars.get(name):
                    issue(text_field, f"placeholder {{{name}}} has no values")
        # expanding needs sound templates; problems of other entries must not hide this one's
        expanded = [eid for eid, _ in expand_entry(catalog, entry)] if len(issues) == before else []
        for eid, n in Counter(expanded).items():
            if n > 1:
                issue("variables", f"expanded id '{eid}' occurs {n} times: a variable lists a value twice")
    return issues


def _check_params(params, preset: Preset, base_dir, issue) -> None:
    for dim in ("width", "height"):
        value = getattr(params, dim) or getattr(preset, dim)
        if value % preset.size_multiple:
            issue(dim, f"{value} is not divisible by {preset.size_multiple} (required by {preset.name})")
    sched = params.scheduler
    if preset.family == "flux" and sched not in (None, "default", "flow_match_euler"):
        issue("scheduler", f"'{sched}' does not work with flow-matching model {preset.name}")
    if preset.family != "flux" and sched == "flow_match_euler":
        issue("scheduler", f"'flow_match_euler' is for Flux models, not {preset.name}")
    if preset.guidance_kind == "none" and params.guidance not in (None, 0):
        issue("guidance", f"{preset.name} is guidance-distilled and ignores guidance; set 0 or remove it")
    if preset.guidance_kind != "cfg" and params.negative_prompt and not params.true_cfg_scale:
        issue(
            "negative_prompt",
            f"{preset.name} has no classifier-free guidance, so a negative prompt would be ignored",
            "remove it"
            + (
                ", or set `true_cfg_scale: 2` or more to run real CFG (twice the cost)"
                if preset.family == "flux"
                else ""
            ),
        )
    if preset.family != "flux" and params.true_cfg_scale is not None:
        issue("true_cfg_scale", "only Flux models take true_cfg_scale; use `guidance` for CFG")
    if params.refiner_switch is not None and not preset.refiner_id:
        issue("refiner_switch", f"{preset.name} has no refiner; use the sdxl-base+refiner preset")
    if preset.controlnet_id and not params.control_image:
        issue("control_image", f"{preset.name} needs a control_image (a path relative to the catalog)")
    if params.control_image and not preset.controlnet_id:
        issue("control_image", f"{preset.name} is not a ControlNet preset; remove control_image")
    if params.control_image and not (base_dir / params.control_image).is_file():
        issue("control_image", f"file not found: {(base_dir / params.control_image)}")
    if params.lora and not (base_dir / params.lora.path).is_file():
        issue("lora.path", f"file not found: {(base_dir / params.lora.path)}")
